"""Sizes as an operator writes them (relay --buffer-bytes) and reads them back."""

from __future__ import annotations

import pytest

from eslkit.sizes import parse_size, size_text


@pytest.mark.parametrize("text, size", [
    ("256MB", 256_000_000), ("1GB", 1_000_000_000), ("512kB", 512_000), ("4096", 4096), ("4096B", 4096),
    ("256mb", 256_000_000), ("512KB", 512_000), ("1.5GB", 1_500_000_000), (" 64 MB ", 64_000_000),
    ("2M", 2_000_000), ("256MiB", 256 * 1024**2), ("1GiB", 1024**3), ("8kib", 8192),
])
def test_sizes_an_operator_writes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "12XB", "-5MB", "1e9", "256 M B", "0", "0MB", "0.0001kB", "nan"])
def test_anything_else_is_one_sentence(text):
    with pytest.raises(ValueError) as err:
        parse_size(text)
    message = str(err.value)
    assert message.endswith("(e.g. 256MB).") and "\n" not in message and repr(text) in message


@pytest.mark.parametrize("size, text", [
    (256_000_000, "256 MB"), (1_500_000, "1.5 MB"), (1_000_000_000, "1 GB"), (512_000, "512 kB"),
    (256 * 1024**2, "256 MiB"), (8192, "8 KiB"), (999, "999 bytes"), (1_024_000, "1.024 MB"),
    (123_456_789, "123.457 MB"),
])
def test_sizes_read_back_as_given(size, text):
    assert size_text(size) == text
    if "." not in text and "bytes" not in text:
        assert parse_size(text) == size
