"""Sampler over any OpenAI-compatible endpoint (``vllm serve``, a hosted API, ...).

``endpoint.base_url`` is the API root (``http://127.0.0.1:8000/v1``: chat completions are posted
to ``<root>/chat/completions``) or a full ``.../chat/completions`` or ``.../completions`` URL (the
latter gets a ChatML-rendered prompt). The key is read from the environment variable named by
``endpoint.api_key_env`` at request time; it is never stored, logged or shown in an error.
Plain ``urllib``: every failure becomes a :class:`SamplerError` naming the URL and what went wrong.
"""
from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..config import DecodingSpec, EndpointSpec
from ..generation import Generation
from . import Sampler, SamplerError

RETRY_STATUS = (429, 502, 503, 504)


def _render_chatml(conversation: list[dict[str, str]]) -> str:
    parts = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in conversation]
    return "".join(parts) + "<|im_start|>assistant\n"


class OpenAISampler(Sampler):
    name = "openai"

    def __init__(self, endpoint: EndpointSpec, *, max_new_tokens: int, batch_size: int = 8,
                 max_retries: int = 2, concurrency: int = 8):
        super().__init__(max_new_tokens=max_new_tokens, batch_size=batch_size)
        base = endpoint.base_url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise SamplerError(f"endpoint.base_url must start with http:// or https://, got "
                               f"{endpoint.base_url!r}")
        self.url = base if base.endswith("/completions") else base + "/chat/completions"
        self.chat = self.url.endswith("/chat/completions")  # else a ChatML-rendered prompt
        self.endpoint = endpoint
        self.model = endpoint.model or "default"
        self.max_retries = max(0, int(max_retries))
        self.concurrency = max(1, int(concurrency))

    def params(self, decoding: DecodingSpec) -> dict[str, Any]:
        return {**super().params(decoding), "endpoint": self.url, "model": self.model}

    # ---- one request ----------------------------------------------------------------------------
    def _key(self) -> str | None:
        return os.environ.get(self.endpoint.api_key_env) or None

    def _redact(self, text: str) -> str:
        key = self._key()
        return text.replace(key, "***") if key else text

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        attempt = 0
        while True:
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.endpoint.timeout_s) as resp:
                    raw = resp.read()
                break
            except urllib.error.HTTPError as exc:
                detail = ""
                try:
                    detail = exc.read().decode("utf-8", "replace").strip()
                except Exception:  # noqa: BLE001
                    pass
                if exc.code in RETRY_STATUS and attempt < self.max_retries:
                    attempt += 1
                    time.sleep(0.5 * 2 ** attempt)
                    continue
                raise SamplerError(self._redact(
                    f"endpoint {self.url} answered HTTP {exc.code} {exc.reason}"
                    + (f": {detail[:300]}" if detail else ""))) from None
            except (TimeoutError, socket.timeout, urllib.error.URLError) as exc:
                if isinstance(getattr(exc, "reason", exc), (TimeoutError, socket.timeout)):
                    raise SamplerError(f"endpoint {self.url} did not answer within "
                                       f"{self.endpoint.timeout_s:g} s (endpoint.timeout_s)") from None
                if attempt < self.max_retries and isinstance(exc.reason, ConnectionError):
                    attempt += 1
                    time.sleep(0.5 * 2 ** attempt)
                    continue
                raise SamplerError(f"cannot reach endpoint {self.url}: {exc.reason}") from None
            except ConnectionError as exc:
                raise SamplerError(f"connection to endpoint {self.url} failed: {exc}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            snippet = raw[:120].decode("utf-8", "replace")
            raise SamplerError(self._redact(f"endpoint {self.url} replied with something that is "
                                            f"not JSON: {snippet!r}")) from None
        if not isinstance(data, dict):
            raise SamplerError(f"endpoint {self.url} replied with a JSON {type(data).__name__}, "
                               "expected an object with `choices`")
        if "error" in data and not data.get("choices"):
            err = data["error"]
            msg = err.get("message") if isinstance(err, dict) else err
            raise SamplerError(self._redact(f"endpoint {self.url} returned an error: {str(msg)[:300]}"))
        return data

    def _one(self, conversation: list[dict[str, str]], decoding: DecodingSpec, seed: int) -> Generation:
        payload: dict[str, Any] = {"model": self.model, "max_tokens": self.max_new_tokens, "n": 1}
        if decoding.greedy:
            payload["temperature"] = 0.0
        else:
            payload.update(temperature=decoding.temperature, top_p=decoding.top_p, seed=int(seed))
        if self.chat:
            payload["messages"] = conversation
        else:
            payload["prompt"] = _render_chatml(conversation)
        data = self._post(payload)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise SamplerError(f"unexpected reply from {self.url}: no `choices` "
                               f"(keys: {sorted(data)[:8]})")
        choice = choices[0]
        if self.chat:
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else None
        else:
            text = choice.get("text")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise SamplerError(f"unexpected reply from {self.url}: the response text is a "
                               f"{type(text).__name__}, not a string")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        n_tokens = usage.get("completion_tokens")
        if not isinstance(n_tokens, int):
            n_tokens = len(text.split())
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        return Generation(text=text.strip(), n_tokens=n_tokens, finish_reason=finish)

    def _generate(self, conversations, decoding: DecodingSpec, seeds: list[int]) -> list[Generation]:
        workers = min(self.concurrency, len(conversations))
        if workers <= 1:
            return [self._one(c, decoding, s) for c, s in zip(conversations, seeds)]
        with ThreadPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(lambda cs: self._one(cs[0], decoding, cs[1]),
                               zip(conversations, seeds)))
