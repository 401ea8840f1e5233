"""The emulated outside world: a Kubernetes API with Karpenter, AWS and Slack, for tests and the demo."""
