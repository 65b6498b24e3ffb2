{{- define "model-api.fullname" -}}
{{- printf "%s-%s" .Release.Name .Values.model.name | replace "_" "-" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "model-api.labels" -}}
{{ include "model-api.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.model.version | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "model-api.selectorLabels" -}}
app.kubernetes.io/name: model-api
app.kubernetes.io/instance: {{ .Release.Name }}
{{- /* one release per environment serves all its use cases: the use case tells them apart */}}
mlops-assets/use-case: {{ .Values.model.name | replace "_" "-" }}
{{- end -}}

{{/* The Secret with the storage credentials: External Secrets' when on, else an existing one. */}}
{{- define "model-api.storageSecret" -}}
{{- if .Values.externalSecrets.enabled -}}
{{- printf "%s-storage" (include "model-api.fullname" .) -}}
{{- else -}}
{{- .Values.storage.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "model-api.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "model-api.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The pod template, shared by the Deployment and the Argo Rollouts Rollout. */}}
{{- define "model-api.podTemplate" -}}
metadata:
  labels:
    {{- include "model-api.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/version: {{ .Values.model.version | quote }}
  annotations:
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    mlops-assets/model-sha256: {{ .Values.model.sha256 | quote }}
    {{- if .Values.metrics.podAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: "8080"
    prometheus.io/path: /metrics
    {{- end }}
spec:
  serviceAccountName: {{ include "model-api.serviceAccountName" . }}
  # the server never calls the Kubernetes API
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: {{ add (.Values.serving.drainSeconds | int) (.Values.serving.graceSeconds | int) 5 }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    fsGroup: 10001
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: model-api
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["mlops-assets"]
      args: ["serve", "--use-case", {{ .Values.model.name | quote }}, "--host", "0.0.0.0", "--port", "8080"]
      env:
        - name: MODEL_URI
          value: {{ .Values.model.uri | quote }}
        - name: MODEL_SHA256
          value: {{ .Values.model.sha256 | quote }}
        - name: MODEL_ADAPTER
          value: {{ .Values.model.adapter | quote }}
        - name: MODEL_METADATA_SHA256
          value: {{ .Values.model.metadataSha256 | quote }}
        {{- with .Values.model.estimator }}
        - name: MODEL_ESTIMATOR
          value: {{ . | quote }}
        {{- end }}
        {{- with .Values.model.trustedTypes }}
        - name: MODEL_TRUSTED_TYPES
          value: {{ . | quote }}
        {{- end }}
        {{- with .Values.model.contractVersion }}
        - name: MODEL_CONTRACT_VERSION
          value: {{ . | quote }}
        {{- end }}
        {{- with .Values.kerasBackend }}
        - name: KERAS_BACKEND
          value: {{ . | quote }}
        {{- end }}
        {{- range $key, $variable := dict "maxBodyMb" "MAX_BODY_MB" "maxRows" "MAX_ROWS" "maxDepth" "MAX_DEPTH" "readTimeoutSeconds" "READ_TIMEOUT_SECONDS" "batching" "BATCHING" "maxBatchRows" "MAX_BATCH_ROWS" "maxBatchWaitMs" "MAX_BATCH_WAIT_MS" "drainSeconds" "DRAIN_SECONDS" "graceSeconds" "GRACE_SECONDS" }}
        {{- $value := index $.Values.serving $key }}
        {{- if not (kindIs "invalid" $value) }}
        - name: MLOPS_SERVING_{{ $variable }}
          value: {{ $value | toString | quote }}
        {{- end }}
        {{- end }}
        - name: MODEL_ENVIRONMENT
          value: {{ .Values.environment | default .Release.Name | quote }}
        {{- range $key, $value := .Values.inferenceLog }}
        {{- if not (kindIs "invalid" $value) }}
        - name: MLOPS_INFERENCE_LOG_{{ $key | snakecase | upper }}
          value: {{ $value | toString | quote }}
        {{- end }}
        {{- end }}
        {{- with .Values.storage.root }}
        - name: MLOPS_STORAGE_ROOT
          value: {{ . | quote }}
        {{- end }}
        {{- with .Values.storage.endpointUrl }}
        - name: MLOPS_S3_ENDPOINT_URL
          value: {{ . | quote }}
        {{- end }}
        {{- with .Values.storage.region }}
        - name: AWS_REGION
          value: {{ . | quote }}
        {{- end }}
      {{- with include "model-api.storageSecret" . }}
      envFrom:
        - secretRef:
            name: {{ . }}
      {{- end }}
      ports:
        - name: http
          containerPort: 8080
          protocol: TCP
      livenessProbe:
        httpGet: {path: /v2/health/live, port: http}
        periodSeconds: 10
        failureThreshold: 3
      readinessProbe:
        httpGet: {path: /v2/health/ready, port: http}
        periodSeconds: 5
        failureThreshold: 3
      startupProbe:
        httpGet: {path: /v2/health/live, port: http}
        periodSeconds: 5
        failureThreshold: 30
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: tmp
      emptyDir: {}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
