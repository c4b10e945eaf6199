"""Container decoders: a cgroup v2 id (`bpf_get_current_cgroup_id`) as a
field of its container (containers/resolver.py): `container` (the runtime's
name), `container_id` (12 hex digits, as `docker ps`), `container_image`,
`container_runtime`, `pod`, `k8s_namespace`, `k8s_container`. A cgroup that
is no container shows as empty text (the host), or as the `host` parameter;
one the resolver cannot name yet (a scan has not looked for it, or its
runtime has not claimed it) as a Provisional text, which no cache keeps. One resolver serves the
process; each value is resolved once (the column memo, the exporter's label
cache), then costs nothing per event. An exporter that drops its
privileges asks a resolver process instead (containers/proxy.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType, Provisional

FIELDS = {"container": "name", "container_id": "id", "container_image": "image", "container_runtime": "runtime",
          "pod": "pod", "k8s_namespace": "namespace", "k8s_container": "k8s_container"}


def _maker(field: str) -> Any:
    def make(params: Mapping[str, Any]) -> Decode:
        host = params.get("host", "")
        if not isinstance(host, str):
            raise ValueError("host: expected the text shown for a cgroup that is no container")

        def decode(cgroup_id: int) -> str:
            from ..containers.resolver import lookups  # imported on first use: reads /proc, /sys

            found, final = lookups().lookup(cgroup_id)
            if found is None:
                return host if final else Provisional(host)
            value = str(getattr(found, field))
            return (value[:12] if field == "id" else value) or host
        return decode
    return make


DECODERS = tuple(DecoderType(name, ("int",), ("host",), _maker(field), f"a cgroup v2 id as its container's {field}")
                 for name, field in FIELDS.items())
