"""The one preprocessing path: training and serving both turn text into tensors here.

Both sides use the same `tokenizers.Tokenizer` (the Rust tokenizer behind every Hugging
Face "fast" tokenizer), saved as `tokenizer/tokenizer.json` in the model directory, and
the same settings, saved as `preprocessing.json`: normalisation, truncation length and
padding token. Serving imports only the `tokenizers` package (milliseconds), never
transformers' tokenizer stack.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sagemaker_platform import artifacts
from sagemaker_platform.errors import UserError

TOKENIZER_FILE = "tokenizer.json"
NORMAL_FORMS = ("NFC", "NFD", "NFKC", "NFKD")  # what unicodedata.normalize takes


@dataclass(frozen=True)
class TextSettings:
    max_length: int = 256  # tokens kept; longer texts are truncated from the end
    normalization: str = "NFC"  # unicode normal form applied before tokenizing
    pad_id: int = 0  # the backbone's padding token
    pad_token: str = "[PAD]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "preprocessing.json") -> TextSettings:
        """The settings saved in `where`, each checked (a UserError naming the key and
        the value); a key it lacks keeps its default, one it does not know is ignored."""
        from sagemaker_platform.artifacts import check_choice, check_int, check_str

        from .config import MAX_LENGTH

        checks = {
            "max_length": lambda v, w: check_int(v, w, 1, MAX_LENGTH),
            "normalization": lambda v, w: check_choice(v, w, NORMAL_FORMS),
            "pad_id": lambda v, w: check_int(v, w, 0, 2**31 - 1),
            "pad_token": lambda v, w: check_str(v, w, empty=True),
        }
        return cls(**{k: check(raw[k], f"{where}: {k}") for k, check in checks.items() if k in raw})


def normalize(text: str, settings: TextSettings) -> str:
    return unicodedata.normalize(settings.normalization, text).strip()


# A tokenizer.json may carry regular expressions of its own (a `Split` pre-tokenizer, a
# `Replace` normalizer), which the tokenizers library runs with Oniguruma, a backtracking
# engine: `(a+)+b` on 4,000 characters of "a" took 37 s, the worker frozen. A model
# directory is input like any other, so a pattern that repeats a group (a group followed by
# `*`, `+` or `{n,}`, the shape of exponential backtracking) is refused, in training and
# at serving. Real tokenizers' patterns repeat none (GPT-2's, Llama 3's, XLM-R's ` {2,}`).
def repeated_group(pattern: str) -> str | None:
    """The first group of `pattern` that is repeated (`(a+)+`), or None."""
    opened: list[int] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            i += 2 if pattern[i + 1 : i + 2] in ("]", "^") else 1  # `[]...]`, `[^...]`
            continue
        elif c == "(":
            opened.append(i)
        elif c == ")" and opened:
            start = opened.pop()
            after = pattern[i + 1 : i + 2]
            bound = re.match(r"\{\d*(,(\d*))?\}", pattern[i + 1 :])
            many = bound and (bound.group(1) and (not bound.group(2) or int(bound.group(2)) > 1))
            if after in ("*", "+") or many:
                return pattern[start : i + 1 + (len(bound.group(0)) if bound else 1)]
        i += 1
    return None


def check_patterns(tokenizer_json: str, where: str) -> None:
    """Refuse a tokenizer whose normalizer or pre-tokenizer holds a regex that repeats
    a group (`repeated_group`), naming it."""

    def patterns(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            regex = node.get("pattern")
            if isinstance(regex, dict) and isinstance(regex.get("Regex"), str):
                yield regex["Regex"]
            for value in node.values():
                yield from patterns(value)
        elif isinstance(node, list):
            for value in node:
                yield from patterns(value)

    doc = json.loads(tokenizer_json)
    for part in ("normalizer", "pre_tokenizer"):
        for pattern in patterns(doc.get(part)):
            group = repeated_group(pattern)
            if group is not None:
                raise UserError(
                    f"{where} has a {part} regex that repeats a group, {artifacts.shown(group)} "
                    f"in {artifacts.shown(pattern)}: such a pattern can take minutes on one text"
                )


def tokenizer_for_backbone(source: str, max_length: int):
    """Training side: the backbone's tokenizer (folder or hub id) and its settings."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(
        str(source), local_files_only=Path(source).exists(), trust_remote_code=False
    )
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"{source} has no fast (Rust) tokenizer; convert it to tokenizer.json")
    check_patterns(backend.to_str(), f"the tokenizer of {source}")
    pad_token = hf.pad_token or hf.eos_token or hf.unk_token
    pad_id = hf.convert_tokens_to_ids(pad_token) if pad_token else 0
    limit = getattr(hf, "model_max_length", max_length) or max_length
    settings = TextSettings(
        max_length=min(max_length, limit), pad_id=int(pad_id), pad_token=pad_token or ""
    )
    return backend, settings


def load_tokenizer(folder: Path):
    """Serving side: the saved tokenizer.json; never reaches for the network."""
    from tokenizers import Tokenizer

    path = Path(folder) / TOKENIZER_FILE
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises a bare Exception
        # Parsed again only to say what is wrong (missing, broken or not an object) where
        # the model directory's JSON reader takes it; a larger one gets the library's reason.
        if not (path.is_file() and path.stat().st_size > artifacts.MAX_JSON_BYTES):
            artifacts.read_json(path, expect=dict)
        raise UserError(
            f"model directory is corrupt: {path.parent.name}/{TOKENIZER_FILE} cannot be "
            f"loaded: {str(exc).splitlines()[0]}"
        ) from None


def save_tokenizer(tokenizer, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / TOKENIZER_FILE))


def padded_length(length: int, multiple: int = 1, limit: int | None = None) -> int:
    """`length` rounded up to a multiple, but not past `limit` (where position
    embeddings may end) unless `length` itself is; never zero."""
    stepped = max(multiple, -(-length // multiple) * multiple)
    if limit is not None:
        stepped = min(stepped, limit)
    return max(1, length, stepped)


# Tokenizing takes time in a text's length, and the tokens past max_length are dropped:
# a text longer than max_length x FIRST_CUT characters is tokenized from a prefix, which
# grows fourfold until the tokens kept from it are certainly those the whole text gives
# (`_kept_whole`), up to max_length x LAST_CUT characters: past that, a text is not read
# (one whose first max_length tokens lie further in, behind a word or a run of blanks
# tens of thousands of characters long, is answered from that prefix). Tokens average
# 4-5 characters in English, 1-2 in Chinese, so the first prefix nearly always does.
# On a 2-core EPYC, at max_length 256: a 5 MB English text took 4.3 s to tokenize whole,
# 2 ms so; a single 5 MB word (one [UNK]) 83 ms, up to LAST_CUT (3.7 s whole). Few
# tokens are no cheaper: the tokenizer's time goes with characters (5 MB of blanks, 3.5 s).
FIRST_CUT = 16
LAST_CUT = 1024


def _kept_whole(encoding) -> bool:
    """Whether the tokens a prefix's truncated `encoding` kept are those of the whole
    text: the prefix had more than fit (so a longer text has nothing to add before the
    cut), and the kept tokens end a whole word before the prefix's last word, the one
    the cut may have split. (Normalisers and pre-tokenizers read characters in place,
    or with one of look-ahead, so the words before that last one are the whole text's.)"""
    if not encoding.overflowing:
        return False
    kept = [w for w in encoding.word_ids if w is not None]
    if not kept:  # max_length holds the special tokens alone: nothing of the text is kept
        return True
    last = max(w for o in encoding.overflowing for w in o.word_ids if w is not None)
    return max(kept) + 1 < last


class TextEncoder:
    """Texts to token ids, and token ids to `input_ids` and `attention_mask` padded to
    the longest in the batch (not to max_length: short batches stay cheap). Tokenizing
    and padding are separate steps so that serving can group texts by length in
    between. Thread-safe once built."""

    def __init__(self, tokenizer, settings: TextSettings):
        self.settings = settings
        self.tokenizer = tokenizer
        tokenizer.enable_truncation(max_length=settings.max_length)
        tokenizer.no_padding()  # `pad` does it, per batch

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, truncated to max_length. A long text is tokenized
        from a prefix of it, giving the same ids (`FIRST_CUT`)."""
        first = self.settings.max_length * FIRST_CUT
        ids: list[list[int]] = [[] for _ in texts]
        short = [i for i, t in enumerate(texts) if len(t) <= first]
        encodings = self.tokenizer.encode_batch([normalize(texts[i], self.settings) for i in short])
        for i, encoding in zip(short, encodings, strict=True):
            ids[i] = encoding.ids
        for i, text in enumerate(texts):
            if len(text) > first:
                ids[i] = self._long_text_ids(text)
        return ids

    def _long_text_ids(self, text: str) -> list[int]:
        text = text.lstrip()  # as `normalize` strips it: leading blanks are no tokens
        size = self.settings.max_length * FIRST_CUT
        while len(text) > size:
            encoding = self._encode(normalize(text[:size], self.settings))
            if size >= self.settings.max_length * LAST_CUT or _kept_whole(encoding):
                return encoding.ids
            size *= 4
        return self._encode(normalize(text, self.settings)).ids

    def _encode(self, text: str):
        """One text's encoding through `encode_batch`, which lets Python's lock go while
        it tokenizes (`encode` holds it: a 4 M-character text stopped every other thread,
        the worker's event loop included, for 1.7 s)."""
        return self.tokenizer.encode_batch([text])[0]

    def width(self, length: int, multiple: int = 1) -> int:
        """The padded length of a batch whose longest row is `length` tokens."""
        return padded_length(length, multiple, self.settings.max_length)

    def pad(self, rows: Sequence[Sequence[int]], multiple: int = 1) -> dict[str, Any]:
        """Pad to the longest row, rounded up to `multiple` (fewer distinct shapes)."""
        import torch

        width = self.width(max(map(len, rows), default=0), multiple)
        pad_id = self.settings.pad_id
        ids = [list(r) + [pad_id] * (width - len(r)) for r in rows]
        mask = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
        }

    def __call__(self, texts: Sequence[str]) -> dict[str, Any]:
        return self.pad(self.token_ids(texts))
