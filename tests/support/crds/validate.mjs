// Validates custom resources against the schemas the @kubernetes-models packages compile
// from the upstream projects' CRDs (package.json pins them; package-lock.json their
// integrity). Reads a JSON array of objects on stdin; writes a JSON array with, per object,
// null or the list of schema errors. An unknown kind is an error, not a pass.
import { readFileSync } from "node:fs";

const MODELS = {
  "argoproj.io/v1alpha1": {
    Application: "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application",
    ApplicationSet: "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/ApplicationSet",
    AppProject: "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/AppProject",
    Rollout: "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/Rollout",
    AnalysisTemplate: "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate",
  },
  "external-secrets.io/v1": {
    ExternalSecret: "@kubernetes-models/external-secrets/external-secrets.io/v1/ExternalSecret",
    ClusterSecretStore:
      "@kubernetes-models/external-secrets/external-secrets.io/v1/ClusterSecretStore",
    SecretStore: "@kubernetes-models/external-secrets/external-secrets.io/v1/SecretStore",
  },
  "monitoring.coreos.com/v1": {
    ServiceMonitor: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
    PodMonitor: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
  },
};

const docs = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const doc of docs) {
  const module = MODELS[doc.apiVersion]?.[doc.kind];
  if (!module) {
    results.push([`no schema for ${doc.apiVersion} ${doc.kind}`]);
    continue;
  }
  const models = await import(module);
  const model = new models[doc.kind](doc);
  try {
    model.validate();
    results.push(null);
  } catch (error) {
    results.push((error.errors || [error]).map((e) =>
      e.instancePath !== undefined ? `${e.instancePath || "/"} ${e.message}` : String(e)));
  }
}
process.stdout.write(JSON.stringify(results));
