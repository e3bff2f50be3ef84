"""Local development stack: DynamoDB Local, the table from infra/, and a fixed chalice local.

Nothing here is packaged into the Lambda functions.
"""
