"""litellm's model cost map comes from the copy bundled with litellm, not from the network.

litellm downloads its cost map when it is imported unless
``LITELLM_LOCAL_MODEL_COST_MAP`` is ``True``; without internet that stalls the
first call for many seconds. adk sets the variable (unless it is already set)
before it imports litellm. Each test runs a fresh Python process (litellm is
imported once per process) whose proxy variables point at a loopback listener
that records every connection: a fetch of the cost map would go there.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.openai_server import OpenAIServer, start_server

ROOT = Path(__file__).resolve().parents[2]

FIRST_CALLS = """
import json, os, sys
import anyio
from adk import LiteLLMModel, Message, ModelRequest

async def main() -> None:
    model = LiteLLMModel("openai/test-model", api_base=sys.argv[1], api_key="test", timeout=30)
    request = ModelRequest(messages=[Message.user("hi")])
    answer = (await model.generate(request)).message.content
    streamed = "".join([chunk.content async for chunk in model.stream(request)])
    import litellm
    from litellm.litellm_core_utils.get_model_cost_map import get_model_cost_map_source_info
    print(json.dumps({
        "answers": [answer, streamed],
        "env": os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP"),
        "models": len(litellm.model_cost),
        "source": get_model_cost_map_source_info(),
    }))

anyio.run(main)
"""


class ConnectionRecorder:
    """A loopback TCP listener that records what each connection sends first, then hangs up."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def __enter__(self) -> ConnectionRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._socket.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return  # closed
            with connection:
                connection.settimeout(5)
                try:
                    self.received.append(connection.recv(4096))
                except OSError:
                    self.received.append(b"")


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with start_server(handler=lambda body: "pong") as running:
        yield running


def first_calls(server: OpenAIServer, proxy: str, **env: str) -> dict[str, object]:
    """Make a generate and a stream call in a fresh process; all but loopback goes via ``proxy``."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy") and not key.startswith("LITELLM_")
    }
    proxies = {name: proxy for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}
    proxies |= {name.lower(): proxy for name in proxies}
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALLS, server.base_url],
        env={
            **clean,
            **proxies,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), clean.get("PYTHONPATH")])),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_first_calls_use_the_bundled_cost_map_without_touching_the_network(
    server: OpenAIServer,
) -> None:
    with ConnectionRecorder() as proxy:
        result = first_calls(server, proxy.url)

    assert proxy.received == []  # nothing tried to leave the machine
    assert result["answers"] == ["pong", "pong"]
    assert result["env"] == "True"
    assert isinstance(result["models"], int) and result["models"] > 100
    source = result["source"]
    assert isinstance(source, dict)
    assert (source["source"], source["is_env_forced"], source["url"]) == ("local", True, None)


def test_setting_the_variable_to_false_opts_in_to_the_remote_cost_map(
    server: OpenAIServer,
) -> None:
    # Also proves the recorder above would see a fetch: here litellm tries one, through it.
    with ConnectionRecorder() as proxy:
        result = first_calls(server, proxy.url, LITELLM_LOCAL_MODEL_COST_MAP="False")

    assert any(b"raw.githubusercontent.com" in sent for sent in proxy.received), proxy.received
    assert result["answers"] == ["pong", "pong"]
    assert result["env"] == "False"  # adk left the user's choice alone
    source = result["source"]
    assert isinstance(source, dict)
    assert source["is_env_forced"] is False
    assert "githubusercontent" in str(source["url"])
