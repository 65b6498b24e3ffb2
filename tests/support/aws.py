"""Requests the AWS clients send, counted."""

from __future__ import annotations

from collections import Counter

import pytest


def count_aws_requests(monkeypatch: pytest.MonkeyPatch, calls: Counter) -> None:
    """Count every request any boto3 client sends (S3, SQS), by operation, into `calls`."""
    from botocore.client import BaseClient

    real = BaseClient._make_api_call

    def counting(self, operation, params):
        calls[operation] += 1
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
