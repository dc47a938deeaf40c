"""How the Temporal client is secured: plain by default, TLS (mTLS, a CA, a server
name) or an API key from the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.client import TLSConfig

from core.settings import Environment, Settings
from integrations.temporal_client import tls_config

SECRET = "temporal-client-tests-secret-0123456789abcdef"


def _settings(**values: Any) -> Settings:
    return Settings(environment=Environment.TEST, jwt_secret=SecretStr(SECRET), **values)


def test_plain_by_default() -> None:
    assert tls_config(_settings()) is False


def test_mutual_tls_with_a_private_ca_and_server_name(tmp_path: Path) -> None:
    for name in ("client.pem", "client.key", "ca.pem"):
        (tmp_path / name).write_bytes(f"-----{name}-----".encode())
    config = tls_config(
        _settings(
            temporal_tls=True,
            temporal_tls_client_cert_path=tmp_path / "client.pem",
            temporal_tls_client_key_path=tmp_path / "client.key",
            temporal_tls_server_ca_path=tmp_path / "ca.pem",
            temporal_tls_server_name="temporal.internal.example",
        )
    )
    assert isinstance(config, TLSConfig)
    assert config.client_cert == b"-----client.pem-----"
    assert config.client_private_key == b"-----client.key-----"
    assert config.server_root_ca_cert == b"-----ca.pem-----"
    assert config.domain == "temporal.internal.example"


def test_an_api_key_implies_tls_with_the_system_roots() -> None:
    config = tls_config(_settings(temporal_api_key=SecretStr("key")))
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert is None
    assert config.client_cert is None
