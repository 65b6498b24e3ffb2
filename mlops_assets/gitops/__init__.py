"""GitOps: the model keys of Helm values files, committed and pushed safely."""
