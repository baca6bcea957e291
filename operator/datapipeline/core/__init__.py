"""The pure core: definition model, expressions, schedule math, run state machine. No Kubernetes, kopf, boto3 or database imports."""
