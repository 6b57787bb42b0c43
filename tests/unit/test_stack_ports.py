"""The embedded stack's fixed ports: RELAUNCH_PORT_BASE numbers the servers in one documented order, and a
RELAUNCH_PORT_<NAME> setting wins (adapters/local/stack_ports.py)."""

from __future__ import annotations

import socket

import pytest

from relaunch.adapters.local import stack_ports
from relaunch.adapters.local.stack import DASHBOARD, FUNCTIONS
from relaunch.settings import PORT_ORDER, Settings


def test_the_order_is_every_function_then_the_endpoint_then_the_dashboard_and_each_has_its_own_setting() -> None:
    assert PORT_ORDER == (*FUNCTIONS, stack_ports.ENDPOINT, DASHBOARD)  # the dashboard came last: no port moved
    assert all(f"port_{name}" in Settings.model_fields for name in PORT_ORDER)


def test_a_base_numbers_the_servers_and_a_setting_of_its_own_wins() -> None:
    settings = Settings(port_base=9000, port_reconcile=7000)
    ports = stack_ports.plan(settings, ["orchestrator", "reconcile", "endpoint"])
    assert ports == {"orchestrator": 9002, "reconcile": 7000, "endpoint": 9000 + len(FUNCTIONS)}
    assert stack_ports.plan(Settings(), ["orchestrator"]) == {"orchestrator": 0}  # unset: the OS picks


def test_one_port_for_two_servers_is_refused_naming_both() -> None:
    with pytest.raises(stack_ports.PortTaken, match="port 9001 is given to both wandb_webhook and orchestrator"):
        stack_ports.plan(Settings(port_base=9000, port_orchestrator=9001), FUNCTIONS)


def test_a_base_without_room_for_every_server_is_an_invalid_setting() -> None:
    with pytest.raises(ValueError, match="port_base"):
        Settings(port_base=65535)


def test_a_port_something_listens_on_is_refused_naming_it_and_its_server() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(stack_ports.PortTaken, match=f"port {port} for drift_alert .*RELAUNCH_PORT_DRIFT_ALERT"):
            stack_ports.claim("127.0.0.1", port, "drift_alert")
    stack_ports.claim("127.0.0.1", port, "drift_alert")  # closed: free again
