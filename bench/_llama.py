"""A real inference engine for the serving benchmarks and tests: llama.cpp's ``llama-server``.

adk's cache-aware serving layer routes model calls across engine replicas so that calls
sharing a prompt prefix land where that prefix is already in the KV cache. Showing that
needs a real engine with a real prefix cache, not a mock, but it does not need a *good*
model: prefill cost and cache reuse depend on the architecture and the token count, not
on what the weights say. So this module

- writes a small **random-weight** llama-architecture GGUF (no download, no hub, a few MB,
  deterministic for a seed) with a byte-fallback vocabulary so that any text tokenizes,
  and a Qwen2.5-style ChatML template with tool support so that ``/v1/chat/completions``
  and grammar-forced ``tool_calls`` work;
- starts ``n`` ``llama-server`` replicas on loopback, one thread each (so several fit on a
  small shared machine), with the endpoints a router needs (``/metrics``, ``/slots`` and
  slot actions), and stops them all on exit.

The binary is not built here: point ``ADK_LLAMA_SERVER`` at an executable ``llama-server``.
Only the standard library, ``numpy`` and ``gguf`` (``pip install gguf``) are needed, and
``gguf`` is imported lazily so that importing this module never fails without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

LLAMA_SERVER_ENV = "ADK_LLAMA_SERVER"
"""Environment variable naming the ``llama-server`` executable."""

# Token types, as in gguf.TokenType (kept here so the vocabulary builds without gguf).
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _BYTE = 1, 2, 3, 4, 6

# ChatML turn markers are control tokens (matched as one token in templated prompts, never
# printed); the tool-call tags are user-defined tokens, printed as text so that the server's
# tool-call parser sees them in the output.
_CONTROL_TOKENS = ("<|im_start|>", "<|im_end|>")
_USER_DEFINED_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")

# Multi-character pieces, each buildable by SentencePiece pair merges from pieces before it,
# so that English-like text takes fewer tokens than one per character. "▁" is SPM's space.
_MERGES = (
    "▁t", "th", "▁th", "he", "▁the", "in", "er", "an", "on", "re", "▁a", "▁s", "▁w", "▁o",
    "▁c", "▁b", "▁m", "▁p", "▁f", "▁i", "en", "at", "es", "or", "ed", "is", "it", "ar",
    "al", "ing", "▁to", "▁of", "▁an", "▁and", "▁in", "▁is", "ou", "le", "st", "nd",
)  # fmt: skip

# Qwen2.5-Instruct's chat template (ChatML; tools listed in the system turn; calls written
# as <tool_call>{"name": ..., "arguments": ...}</tool_call>). llama.cpp's --jinja chat
# handling recognises this format, so with "tools" and "tool_choice": "required" the server
# constrains the output to a tool call by grammar and returns OpenAI "tool_calls".
CHAT_TEMPLATE = """\
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n\
You are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and \
arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \
\\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) \
or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

_FORMAT_VERSION = 1  # bump when the file layout below changes, to invalidate cached models

# The vocabulary is fixed (see _vocabulary), so token ids are constants; _check_ids asserts them.
EOG_TOKEN_ID = 260
"""Id of ``<|im_end|>``, the end-of-generation token, in :func:`write_random_model`'s vocabulary."""


# --------------------------------------------------------------------------- binary


def llama_server_binary() -> str | None:
    """The ``llama-server`` named by ``ADK_LLAMA_SERVER`` if it is an executable file, else None.

    Tests and benchmarks call this to decide whether to skip: the engine is an external
    build, never a requirement of adk itself.
    """
    value = os.environ.get(LLAMA_SERVER_ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_file() and os.access(path, os.X_OK):
        return str(path.resolve())
    found = shutil.which(value)  # also accept a bare command name on PATH
    return found


# --------------------------------------------------------------------------- model


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and types of a SentencePiece-style ("llama") byte-fallback vocabulary.

    Every printable ASCII character is a piece and every byte has a ``<0xNN>`` fallback
    token, so any UTF-8 text tokenizes; the merges make common English a bit denser.
    """
    tokens: list[str] = ["<unk>", "<s>", "</s>"]
    types: list[int] = [_UNKNOWN, _CONTROL, _CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [_BYTE] * 256
    tokens += list(_CONTROL_TOKENS)
    types += [_CONTROL] * len(_CONTROL_TOKENS)
    tokens += list(_USER_DEFINED_TOKENS)
    types += [_USER_DEFINED] * len(_USER_DEFINED_TOKENS)
    pieces = ["▁"] + [chr(c) for c in range(33, 127)] + list(_MERGES)
    tokens += pieces
    types += [_NORMAL] * len(pieces)
    # SPM merges the adjacent pair whose merged piece scores highest: longer pieces first.
    scores = [0.0] * (len(tokens) - len(pieces)) + [float(len(p)) - 10.0 for p in pieces]
    return tokens, scores, types


def _check_ids() -> None:
    """Fail loudly if the vocabulary changes without the constants above."""
    tokens, _, _ = _vocabulary()
    if tokens.index("<|im_end|>") != EOG_TOKEN_ID:  # pragma: no cover - a coding error
        raise AssertionError("EOG_TOKEN_ID is out of date with _vocabulary()")


def _model_params(
    width: int, layers: int, heads: int, kv_heads: int, ctx: int, ffn: int, seed: int, std: float
) -> dict[str, Any]:
    """Everything that determines the model file's bytes, for the cache check."""
    return {
        "format": _FORMAT_VERSION,
        "width": width,
        "layers": layers,
        "heads": heads,
        "kv_heads": kv_heads,
        "ctx": ctx,
        "ffn": ffn,
        "seed": seed,
        "std": std,
        "template": hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()[:16],
    }


def write_random_model(
    path: str | os.PathLike[str],
    *,
    width: int = 256,
    layers: int = 4,
    heads: int = 4,
    kv_heads: int = 4,
    ctx: int = 4096,
    ffn: int | None = None,
    seed: int = 0,
    std: float = 0.02,
) -> Path:
    """Write a random-weight llama-architecture GGUF at ``path`` and return the path.

    The weights are float32 normal(0, ``std``) with unit norms, so the model is fast to
    run on one CPU thread and its output is gibberish; what it is for is a real prefill
    cost per token and a real KV cache. ``ffn`` defaults to ``3 * width``.

    The file is cached: a sidecar ``<path>.params.json`` records the parameters, and an
    existing file with the same parameters is kept as it is. The file is written to a
    temporary name and renamed, so a crash never leaves a half-written model behind.
    """
    if width % heads or heads % kv_heads:
        raise ValueError("width must divide by heads, and heads by kv_heads")
    ffn = 3 * width if ffn is None else ffn
    out = Path(path)
    sidecar = out.with_name(out.name + ".params.json")
    params = _model_params(width, layers, heads, kv_heads, ctx, ffn, seed, std)
    if out.is_file() and sidecar.is_file():
        with contextlib.suppress(ValueError, OSError):
            if json.loads(sidecar.read_text()) == params:
                return out

    import gguf  # lazily: only model writing needs it
    import numpy as np

    _check_ids()
    tokens, scores, types = _vocabulary()
    head_dim = width // heads
    rng = np.random.default_rng(seed)

    def dense(rows: int, cols: int) -> Any:
        return (rng.standard_normal((rows, cols)) * std).astype(np.float32)

    def ones(n: int) -> Any:
        return np.ones(n, dtype=np.float32)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    try:
        writer.add_name(f"adk-random-llama-w{width}-l{layers}")
        writer.add_context_length(ctx)
        writer.add_embedding_length(width)
        writer.add_block_count(layers)
        writer.add_feed_forward_length(ffn)
        writer.add_head_count(heads)
        writer.add_head_count_kv(kv_heads)
        writer.add_rope_dimension_count(head_dim)
        writer.add_rope_freq_base(10000.0)
        writer.add_layer_norm_rms_eps(1e-5)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32)
        writer.add_vocab_size(len(tokens))

        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_unk_token_id(tokens.index("<unk>"))
        writer.add_bos_token_id(tokens.index("<s>"))
        # <|im_end|> ends a ChatML turn, so it is the end-of-generation token.
        writer.add_eos_token_id(tokens.index("<|im_end|>"))
        writer.add_eot_token_id(tokens.index("<|im_end|>"))
        writer.add_add_bos_token(False)
        writer.add_add_eos_token(False)
        writer.add_add_space_prefix(False)
        writer.add_chat_template(CHAT_TEMPLATE)

        writer.add_tensor("token_embd.weight", dense(len(tokens), width))
        for i in range(layers):
            writer.add_tensor(f"blk.{i}.attn_norm.weight", ones(width))
            writer.add_tensor(f"blk.{i}.attn_q.weight", dense(heads * head_dim, width))
            writer.add_tensor(f"blk.{i}.attn_k.weight", dense(kv_heads * head_dim, width))
            writer.add_tensor(f"blk.{i}.attn_v.weight", dense(kv_heads * head_dim, width))
            writer.add_tensor(f"blk.{i}.attn_output.weight", dense(width, heads * head_dim))
            writer.add_tensor(f"blk.{i}.ffn_norm.weight", ones(width))
            writer.add_tensor(f"blk.{i}.ffn_gate.weight", dense(ffn, width))
            writer.add_tensor(f"blk.{i}.ffn_up.weight", dense(ffn, width))
            writer.add_tensor(f"blk.{i}.ffn_down.weight", dense(width, ffn))
        writer.add_tensor("output_norm.weight", ones(width))
        writer.add_tensor("output.weight", dense(len(tokens), width))

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    os.replace(tmp, out)
    sidecar.write_text(json.dumps(params, sort_keys=True))
    return out


def default_model_path() -> Path:
    """Where :func:`start_llama_servers` keeps its default model: the temp dir, per user."""
    return Path(tempfile.gettempdir()) / f"adk-llama-{os.getuid()}" / "random-llama.gguf"


# --------------------------------------------------------------------------- scripted answers


def tool_call_text(name: str, arguments: dict[str, Any]) -> str:
    """A tool call written exactly as :data:`CHAT_TEMPLATE` renders it in the history."""
    return f'<tool_call>\n{{"name": "{name}", "arguments": {json.dumps(arguments)}}}\n</tool_call>'


def forced_tool_calls(
    messages: Sequence[dict[str, Any]], calls: Sequence[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """Request fields that make llama-server answer with exactly these OpenAI ``tool_calls``.

    A random-weight model never chooses a tool call, and ``tool_choice`` in llama-server
    takes only "auto", "none" or "required" (no named tool), with "required" still letting
    free text come first. So the call is written by the client as an assistant *prefill*
    (a last assistant message, which llama-server continues), ``tool_choice: "required"``
    keeps the output on the tool-call grammar, and a +100 ``logit_bias`` on
    ``<|im_end|>`` ends the turn at once. The server's tool-call parser reads the prefill
    plus the one generated token and returns ``tool_calls`` with ``finish_reason:
    "tool_calls"``. The prefill is rendered exactly as the template renders that call in
    the next request's history, so the agent's next call reuses the whole prefix, as it
    would with a real model. Send the request with ``tools`` as usual.
    """
    text = "\n".join(tool_call_text(name, args) for name, args in calls)
    return {
        "messages": [*messages, {"role": "assistant", "content": text}],
        "tool_choice": "required",
        "logit_bias": {str(EOG_TOKEN_ID): 100},
    }


def forced_text(text: str, *, with_tools: bool = True) -> dict[str, Any]:
    """Request fields that make llama-server answer with exactly ``text`` (then stop).

    A grammar forcing the literal string; the tokens are really decoded, one step each.
    llama-server refuses ``grammar`` together with tools unless ``tool_choice`` is
    "none", which keeps ``tools`` (so the prompt, and its cached prefix) unchanged.
    """
    fields: dict[str, Any] = {"grammar": f"root ::= {json.dumps(text)}"}
    if with_tools:
        fields["tool_choice"] = "none"
    return fields


# --------------------------------------------------------------------------- servers


def _free_port() -> int:
    """A loopback TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health_status(url: str) -> int | None:
    """HTTP status of ``GET url/health``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=2.0) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:  # 503 while the model loads
        return int(exc.code)
    except (OSError, ValueError):
        return None


def _log_tail(path: Path, limit: int = 2000) -> str:
    """The end of a server log, to put in an error message."""
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "<no log>"


def server_args(
    binary: str,
    model: Path,
    port: int,
    *,
    ctx: int,
    slots: int,
    threads: int,
    cache_ram_mib: int,
    slot_save_path: Path,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The ``llama-server`` command line for one replica (see :func:`start_llama_servers`)."""
    return [
        binary,
        "--model", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--threads", str(threads),
        "--threads-batch", str(threads),
        # -c is the total KV size; without --kv-unified it is split evenly between slots.
        "--ctx-size", str(ctx * slots),
        "--parallel", str(slots),
        "--no-kv-unified",
        # Host-RAM prompt cache: 0 keeps a replica's cache exactly what /slots shows.
        "--cache-ram", str(cache_ram_mib),
        "--metrics",
        "--slots",
        # POST /slots/{id}?action=erase|save|restore answers 501 without a save path.
        "--slot-save-path", str(slot_save_path),
        # Jinja chat templates: needed for "tools" / "tool_choice" and grammar-forced calls.
        "--jinja",
        "--no-webui",
        "--no-warmup",
        *extra_args,
    ]  # fmt: skip


@contextlib.contextmanager
def start_llama_servers(
    n: int,
    *,
    binary: str | None = None,
    model: str | os.PathLike[str] | None = None,
    ctx: int = 4096,
    slots: int = 1,
    threads: int = 1,
    cache_ram_mib: int = 0,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 120.0,
    log_dir: str | os.PathLike[str] | None = None,
) -> Iterator[list[str]]:
    """Start ``n`` ``llama-server`` replicas on free loopback ports; yield their base URLs.

    Each replica has ``slots`` slots of ``ctx`` tokens each, uses ``threads`` CPU threads
    (1 by default, so several replicas share a small machine), and exposes ``/metrics``,
    ``/slots`` and the slot actions (``POST /slots/{id}?action=erase``). Prompt caching
    (``cache_prompt``) is on by default in llama-server. The host-RAM prompt cache is off
    (``cache_ram_mib=0``) so that a replica's cache is exactly its slots' contents; pass a
    size in MiB (or -1 for no limit) to study it. ``model`` defaults to a random-weight
    model written by :func:`write_random_model`; ``binary`` to ``ADK_LLAMA_SERVER``.

    The block returns once every replica answers ``GET /health`` with 200. All replicas
    are terminated on exit, on error too. Logs go to files in a temporary directory,
    removed on exit unless ``log_dir`` is given.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    exe = binary or llama_server_binary()
    if exe is None:
        raise RuntimeError(f"no llama-server: set {LLAMA_SERVER_ENV} to an executable")
    model_path = Path(model) if model is not None else write_random_model(default_model_path())
    work = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="adk-llama-"))
    work.mkdir(parents=True, exist_ok=True)

    procs: list[subprocess.Popen[bytes]] = []  # every process started, for the cleanup
    logs: list[Any] = []
    current: list[subprocess.Popen[bytes]] = []  # the live process of each replica
    urls: list[str] = []
    attempts = [0] * n

    def launch(i: int) -> None:
        """Start replica ``i`` on a fresh port (again, if its port was taken meanwhile)."""
        save_dir = work / f"slots-{i}"
        save_dir.mkdir(exist_ok=True)
        port = _free_port()
        log = open(work / f"server-{i}.log", "ab")  # noqa: SIM115 - closed in finally
        logs.append(log)
        argv = server_args(
            exe,
            model_path,
            port,
            ctx=ctx,
            slots=slots,
            threads=threads,
            cache_ram_mib=cache_ram_mib,
            slot_save_path=save_dir,
            extra_args=extra_args,
        )
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        procs.append(proc)
        attempts[i] += 1
        url = f"http://127.0.0.1:{port}"
        if i < len(current):
            current[i], urls[i] = proc, url
        else:
            current.append(proc)
            urls.append(url)

    try:
        for i in range(n):
            launch(i)

        deadline = time.monotonic() + startup_timeout
        pending = set(range(n))
        while pending:
            for i in sorted(pending):
                if current[i].poll() is not None:
                    tail = _log_tail(work / f"server-{i}.log")
                    # _free_port cannot reserve the port: another process may take it first.
                    if "couldn't bind" in tail and attempts[i] < 3:
                        launch(i)
                        continue
                    raise RuntimeError(
                        f"llama-server {i} exited with {current[i].returncode}:\n{tail}"
                    )
                if _health_status(urls[i]) == 200:
                    pending.discard(i)
            if pending:
                if time.monotonic() > deadline:
                    i = min(pending)
                    raise TimeoutError(
                        f"llama-server {i} not healthy after {startup_timeout} s:\n"
                        + _log_tail(work / f"server-{i}.log")
                    )
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
        if log_dir is None:
            shutil.rmtree(work, ignore_errors=True)
