"""The one cache checker: a size + sha256 record written with the cache, checked when the cache is chosen."""

from __future__ import annotations

from moe_utils.io.cache_check import damage, record, record_path, set_aside


def test_a_file_cache_matches_its_record_until_it_is_truncated_or_changed(tmp_path):
    cache = tmp_path / "data.pt"
    cache.write_bytes(b"x" * 1000)
    assert damage(cache) == "it has no size/checksum record (an interrupted write?)"
    record(cache)
    assert record_path(cache).name == "data.pt.check.json" and damage(cache) is None
    cache.write_bytes(b"x" * 500)
    assert "has 500 bytes, not the 1,000 recorded (truncated?)" in damage(cache)
    cache.write_bytes(b"y" * 1000)
    assert damage(cache) == "data.pt does not match its recorded sha256"


def test_a_folder_cache_names_the_file_that_is_missing_or_wrong(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"1234")
    (folder / "sub" / "tokenizer.json").write_text("{}")
    record(folder)
    assert damage(folder) is None
    (folder / "sub" / "tokenizer.json").unlink()
    assert damage(folder) == "sub/tokenizer.json is missing"


def test_set_aside_moves_the_cache_and_its_record_and_says_so_in_one_line(tmp_path):
    cache = tmp_path / "data.pt"
    cache.write_bytes(b"abc")
    record(cache)
    lines = []
    aside = set_aside(cache, "it is truncated", lines.append)
    assert not cache.exists() and aside.read_bytes() == b"abc" and not record_path(cache).exists()
    assert lines == [f"cache {cache} is damaged (it is truncated); moved aside to data.pt.damaged and rebuilding it"]
