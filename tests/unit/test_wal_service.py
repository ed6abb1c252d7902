"""Where the WAL sidecar meets the server container, read from `docker inspect`."""

from __future__ import annotations

import json

import pytest

from backup_agent.model.errors import ConfigurationError
from backup_agent.wal.service import ContainerNetwork, parse_networks


def test_a_network_of_the_user_s_wins_and_the_server_is_found_by_name() -> None:
    networks = {"bridge": {"IPAddress": "172.17.0.5", "IPPrefixLen": 16},
                "dorami_default": {"IPAddress": "172.18.0.2", "IPPrefixLen": 16}}
    assert parse_networks(json.dumps(networks), "dorami-postgres") == ContainerNetwork(
        name="dorami_default", host="dorami-postgres", subnet="172.18.0.0/16")


def test_on_the_default_bridge_only_the_server_is_found_by_address() -> None:
    networks = {"bridge": {"IPAddress": "172.17.0.5", "IPPrefixLen": 16}}
    assert parse_networks(json.dumps(networks), "db") == ContainerNetwork(
        name=None, host="172.17.0.5", subnet="172.17.0.0/16")


@pytest.mark.parametrize("text", ["", "null", "{}", '{"host": {"IPAddress": ""}}', "running"])
def test_no_address_is_an_error_naming_the_container(text: str) -> None:
    with pytest.raises(ConfigurationError, match="container db"):
        parse_networks(text, "db")
