"""Steward inside the customer's AWS account: the parts that need boto3 (the ``aws`` extra,
``pip install 'langgraph-steward[aws]'``), imported on first use, so that nothing else in
Steward depends on them.

- ``rds``: Amazon RDS and Aurora PostgreSQL with IAM database authentication
  (``steward.open(url, password=rds_iam_password(host, port, user))``).
"""

from steward.aws.rds import RdsIamPassword, rds_iam_password

__all__ = ["RdsIamPassword", "rds_iam_password"]
