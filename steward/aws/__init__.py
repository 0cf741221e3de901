"""Steward on AWS's own parts (the ``aws`` extra: ``pip install 'langgraph-steward[aws]'``).

- ``agentcore``: serve a graph on Amazon Bedrock AgentCore Runtime (``agentcore_app``).

Nothing else in Steward imports this package: each module imports its AWS library when used.
"""
