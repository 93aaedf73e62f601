"""Audio input: reading recordings and their headers, with errors that name the file.

Everything that touches FLAC/WAV goes through here so that sample-rate and channel checks, the int16 scaling and the
error messages are the same for validation, the waveform cache, test inference and detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf


#: 16-bit PCM full scale: int16 sample / 32768 -> float in [-1, 1).
PCM_SCALE = np.float32(1.0 / 32768.0)


def samples(seconds: float, sample_rate: int) -> int:
    """Whole samples in `seconds` at `sample_rate`, rounded to the nearest: the one seconds-to-samples conversion of
    windows, margins, crops and hops (0.1 s at 44.1 kHz is 4410, not the 4409 that truncating 4409.999... gives)."""
    return int(round(seconds * sample_rate))


class AudioError(ValueError):
    """A recording cannot be used: unreadable, or not in the expected format. The message names the file."""


@dataclass(frozen=True)
class AudioInfo:
    """What a recording's header says, read without decoding the samples."""

    path: Path
    sample_rate: int
    channels: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def read_info(path: str | Path) -> AudioInfo:
    """Header of a recording; raises AudioError (naming the file) when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: file not found")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError for corrupt files
        raise AudioError(f"{path}: unreadable audio ({exc})") from exc
    return AudioInfo(path=path, sample_rate=int(info.samplerate), channels=int(info.channels), frames=int(info.frames))


def read_segment(path: str | Path, start: int = 0, frames: int = -1, *, expected_rate: int | None = None,
                 dtype: str = "int16") -> np.ndarray:
    """Decode `frames` samples from sample `start` of a mono recording (all of it by default).

    Reading only the needed segment lets the cache and the detector avoid holding long recordings whole. When
    `expected_rate` is given, a recording at another rate is an error rather than silently misread.
    """
    path = Path(path)
    try:
        with sf.SoundFile(str(path)) as handle:
            if expected_rate is not None and handle.samplerate != expected_rate:
                raise AudioError(f"{path}: sample rate {handle.samplerate} Hz, expected {expected_rate} Hz")
            if handle.channels != 1:
                raise AudioError(f"{path}: {handle.channels} channels, expected mono")
            if start:
                handle.seek(start)
            data = handle.read(frames, dtype=dtype, always_2d=False)
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({exc})") from exc
    return data


def decode_fully(path: str | Path) -> int:
    """Decode a whole file block by block (without keeping it) and return its frame count; proves it is not corrupt."""
    total = 0
    try:
        for block in sf.blocks(str(path), blocksize=1 << 18, dtype="int16", always_2d=True):
            total += block.shape[0]
    except Exception as exc:
        raise AudioError(f"{path}: corrupt audio, decoding failed after {total} frames ({exc})") from exc
    return total


def stream_blocks(path: str | Path, block_frames: int, overlap_frames: int = 0,
                  dtype: str = "float32") -> Iterator[tuple[int, np.ndarray]]:
    """Yield (start_frame, mono block) pairs covering a file of any length without loading it whole."""
    try:
        with sf.SoundFile(str(path)) as handle:
            blocks = handle.blocks(blocksize=block_frames, overlap=overlap_frames, dtype=dtype, always_2d=True)
            for index, block in enumerate(blocks):
                yield index * (block_frames - overlap_frames), block.mean(axis=1) if handle.channels > 1 else block[:, 0]
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({exc})") from exc


def int16_to_float(samples: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Scale 16-bit PCM to float32 in [-1, 1), as soundfile does for float reads, in one pass (into `out` when
    given, so a batch can be filled row by row without an int16 copy)."""
    return np.multiply(samples, PCM_SCALE, out=out, dtype=np.float32)
