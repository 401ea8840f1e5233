"""migratebot: moves EKS worker nodes from Amazon Linux 2 to Bottlerocket, wave by wave, from Slack."""

__version__ = "0.1.0"
