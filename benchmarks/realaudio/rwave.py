"""Read tuneR `Wave` objects out of R data files (.rda / .RData) without R.

Several CRAN bioacoustics packages (seewave, warbleR's NatureSounds, monitoR, ohun, soundecology, dynaSpec) ship their
real example recordings only as serialized R objects. This is a minimal reader of R's XDR serialization format (versions
2 and 3), enough to walk any saved object and pull out every S4 object of class "Wave", so the benchmark builder needs
no R installation and no extra Python package.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# SEXP type codes (R Internals, "Serialization formats").
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
SPECIALSXP, BUILTINSXP, CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP = 7, 8, 9, 10, 13, 14, 15
STRSXP, DOTSXP, VECSXP, EXPRSXP, EXTPTRSXP, WEAKREFSXP, RAWSXP, S4SXP = 16, 17, 19, 20, 22, 23, 24, 25
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP, MISSINGARG_SXP, BASENAMESPACE_SXP = 255, 254, 253, 252, 251, 250
NAMESPACESXP, PACKAGESXP, EMPTYENV_SXP, BASEENV_SXP, ALTREP_SXP = 249, 248, 242, 241, 238
_PAIR_TYPES = frozenset({LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP})
_SINGLETONS = frozenset({NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP, MISSINGARG_SXP, BASENAMESPACE_SXP,
                         EMPTYENV_SXP, BASEENV_SXP})


@dataclass
class RObject:
    """One decoded R value: its SEXP type, payload and attributes (a name -> RObject dict)."""

    kind: int
    value: Any = None
    attrs: dict[str, Any] = field(default_factory=dict)


class _Reader:
    """Sequential XDR reader keeping R's reference table (symbols and environments are written once)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.refs = data, 0, []

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        if len(chunk) != n:
            raise ValueError("truncated R data")
        self.pos += n
        return chunk

    def int(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def length(self) -> int:
        n = self.int()
        return n if n != -1 else (self.int() << 32) + self.int()

    def item(self) -> Any:
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if kind in _SINGLETONS:
            return None
        if kind == REFSXP:
            index = flags >> 8 or self.int()
            return self.refs[index - 1]
        if kind == SYMSXP:
            symbol = self.item()
            self.refs.append(symbol)
            return symbol
        if kind in (NAMESPACESXP, PACKAGESXP):
            self.int()
            obj = RObject(kind, [self.item() for _ in range(self.int())])
            self.refs.append(obj)
            return obj
        if kind == ENVSXP:
            return self._environment()
        if kind in _PAIR_TYPES:
            return self._pairlist(has_attr, has_tag, kind)
        if kind == ALTREP_SXP:
            return self._altrep()
        obj = self._vector(kind)
        if has_attr:
            obj.attrs = _attributes(self.item())
        return obj

    def _environment(self) -> RObject:
        obj = RObject(ENVSXP)
        self.refs.append(obj)
        self.int()  # locked
        enclos, frame, hashtab, attrib = self.item(), self.item(), self.item(), self.item()
        obj.value = {"frame": frame, "hashtab": hashtab, "enclos": enclos, "attrib": attrib}
        return obj

    def _pairlist(self, has_attr: bool, has_tag: bool, kind: int) -> RObject:
        """A pairlist as a list of (tag, value); read iteratively along the CDR chain (lists can be long)."""
        items: list[tuple[Any, Any]] = []
        attrs: dict[str, Any] = {}
        while True:
            attr = self.item() if has_attr else None
            if attr is not None and not items:
                attrs = _attributes(attr)
            tag = self.item() if has_tag else None
            items.append((tag, self.item()))
            flags = self.int()
            next_kind = flags & 0xFF
            if next_kind != kind:
                self.pos -= 4
                tail = self.item()
                if tail is not None:
                    items.append((None, tail))
                return RObject(kind, items, attrs)
            has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))

    def _altrep(self) -> RObject:
        """Compact sequences and wrappers (format 3): expand them to plain vectors."""
        info, state, attr = self.item(), self.item(), self.item()
        cls = info.value[0][1] if isinstance(info, RObject) and info.value else ""
        if cls in ("compact_intseq", "compact_realseq"):
            n, start, step = (float(v) for v in state.value[:3])
            values = start + step * np.arange(int(n))
            obj = RObject(INTSXP if cls == "compact_intseq" else REALSXP, values.astype(
                np.int32 if cls == "compact_intseq" else np.float64))
        elif str(cls).startswith("wrap_"):
            obj = state.value[0] if isinstance(state.value, list) else state
        elif cls == "deferred_string":
            inner = state.value[0][1] if isinstance(state.value, list) else state
            obj = RObject(STRSXP, [str(v) for v in np.asarray(inner.value).tolist()])
        else:
            raise ValueError(f"unsupported ALTREP class {cls!r}")
        if attr is not None:
            obj.attrs = _attributes(attr)
        return obj

    def _vector(self, kind: int) -> RObject:
        if kind == CHARSXP:
            n = self.int()
            return RObject(kind, None if n == -1 else self.take(n).decode("utf-8", "replace"))
        if kind in (LGLSXP, INTSXP):
            n = self.length()
            return RObject(kind, np.frombuffer(self.take(4 * n), dtype=">i4").astype(np.int32))
        if kind == REALSXP:
            n = self.length()
            return RObject(kind, np.frombuffer(self.take(8 * n), dtype=">f8").astype(np.float64))
        if kind == CPLXSXP:
            n = self.length()
            return RObject(kind, np.frombuffer(self.take(16 * n), dtype=">f8"))
        if kind == RAWSXP:
            return RObject(kind, self.take(self.length()))
        if kind == STRSXP:
            return RObject(kind, [self.item().value for _ in range(self.length())])
        if kind in (VECSXP, EXPRSXP):
            return RObject(kind, [self.item() for _ in range(self.length())])
        if kind == S4SXP:
            return RObject(kind)
        if kind in (SPECIALSXP, BUILTINSXP):
            return RObject(kind, self.take(self.int()).decode())
        if kind in (EXTPTRSXP, WEAKREFSXP):
            obj = RObject(kind)
            self.refs.append(obj)
            if kind == EXTPTRSXP:
                obj.value = (self.item(), self.item())
            return obj
        raise ValueError(f"unsupported R type {kind}")


def _attributes(pairlist: Any) -> dict[str, Any]:
    """Attribute pairlist -> {name: value}."""
    if not isinstance(pairlist, RObject) or pairlist.kind != LISTSXP:
        return {}
    return {_name(tag): value for tag, value in pairlist.value}


def _name(tag: Any) -> str:
    return tag.value if isinstance(tag, RObject) else str(tag)


def _decompress(raw: bytes) -> bytes:
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    if raw[:3] == b"BZh":
        return bz2.decompress(raw)
    if raw[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(raw)
    return raw


def read_rdata(raw: bytes) -> dict[str, Any]:
    """Objects saved in an .rda/.RData file (bytes), by name."""
    data = _decompress(raw)
    if data[:5] not in (b"RDX2\n", b"RDX3\n") or data[5:7] != b"X\n":
        raise ValueError("not an XDR R data file (RDX2/RDX3)")
    reader = _Reader(data[7:])
    version = reader.int()
    reader.int(), reader.int()
    if version == 3:
        reader.take(reader.int())  # native encoding name
    top = reader.item()
    return {_name(tag): value for tag, value in top.value}


def _is_wave(obj: Any) -> bool:
    cls = obj.attrs.get("class") if isinstance(obj, RObject) else None
    return cls is not None and "Wave" in (cls.value or [])


def _wave_to_array(obj: RObject) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and the sample rate of a tuneR Wave (stereo channels are averaged)."""
    attrs = obj.attrs
    rate = int(round(float(attrs["samp.rate"].value[0])))
    bit = int(attrs["bit"].value[0]) if "bit" in attrs else 16
    pcm = bool(attrs["pcm"].value[0]) if "pcm" in attrs else True
    left = np.asarray(attrs["left"].value, dtype=np.float64)
    right = attrs.get("right")
    if isinstance(right, RObject) and right.value is not None and len(right.value) == len(left):
        left = (left + np.asarray(right.value, dtype=np.float64)) / 2
    if pcm:
        left = (left - 128.0) / 128.0 if bit == 8 else left / float(2 ** (bit - 1))
    return left.astype(np.float32), rate


def find_waves(obj: Any, path: str = "") -> list[tuple[str, np.ndarray, int]]:
    """Every Wave object inside obj (depth first), as (path, samples, rate); names come from R `names` attributes."""
    if _is_wave(obj):
        return [(path, *_wave_to_array(obj))]
    found: list[tuple[str, np.ndarray, int]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += find_waves(value, f"{path}/{key}" if path else key)
    elif isinstance(obj, RObject):
        if obj.kind in (VECSXP, EXPRSXP):
            names = obj.attrs.get("names")
            labels = names.value if isinstance(names, RObject) else [str(i) for i in range(len(obj.value))]
            for label, value in zip(labels, obj.value):
                found += find_waves(value, f"{path}/{label}")
        elif obj.kind in _PAIR_TYPES:
            for i, (tag, value) in enumerate(obj.value):
                found += find_waves(value, f"{path}/{_name(tag) if tag is not None else i}")
        for key, value in obj.attrs.items():
            if key not in ("names", "class", "row.names"):
                found += find_waves(value, f"{path}@{key}")
    return found
