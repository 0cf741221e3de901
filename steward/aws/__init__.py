"""Steward inside the customer's AWS account (the ``aws`` extra,
``pip install 'langgraph-steward[aws]'``). Each module imports its AWS library on first use,
and nothing else in Steward imports this package.

- ``agentcore``: serve a graph on Amazon Bedrock AgentCore Runtime (``agentcore_app``);
- ``rds``: Amazon RDS and Aurora PostgreSQL with IAM database authentication
  (``steward.open(url, password=rds_iam_password(host, port, user))``).
"""

from steward.aws.rds import RdsIamPassword, rds_iam_password

__all__ = ["RdsIamPassword", "rds_iam_password"]
