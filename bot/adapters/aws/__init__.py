"""The AWS adapter: the only package that imports `boto3`."""

from bot.adapters.aws.client import AwsAdapter, NodeGroup

__all__ = ["AwsAdapter", "NodeGroup"]
