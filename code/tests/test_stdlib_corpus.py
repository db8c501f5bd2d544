"""The standard library's source as a corpus (chapter 10): deterministic files, splits by file, clear errors."""
import sys

import pytest
import torch

from seqlab.data import load_corpus
from seqlab.data import stdlib
from seqlab.measure import ngram_level, ngram_level_name, ngram_levels_text
from seqlab.models.ngram import NGramLM, window_losses


def make_tree(root):
    (root / "pkg" / "tests").mkdir(parents=True)
    (root / "test").mkdir()
    (root / "pkg" / "a.py").write_text("def f(x):\n    return x  # caf\u00e9\n")
    (root / "pkg" / "tests" / "t.py").write_text("skip me\n")
    (root / "test" / "u.py").write_text("skip me\n")
    (root / "test_top.py").write_text("skip me\n")
    for i in range(25):
        (root / f"m{i:02d}.py").write_text(f"x{i} = {i}\r\n")
    return root


def test_files_are_sorted_and_tests_left_out(tmp_path):
    root = make_tree(tmp_path)
    names = [p.relative_to(root).as_posix() for p in stdlib.source_files(root)]
    assert names == sorted(names) and len(names) == 26
    assert "pkg/a.py" in names and not any("test" in n for n in names)


def test_split_by_file_and_one_vocabulary(tmp_path):
    c = stdlib.StdlibCorpus(make_tree(tmp_path))
    assert [stdlib.split_of(i) for i in (0, 9, 19, 29, 39)] == ["train", "tune", "val", "tune", "val"]
    assert c.info()["files"] == {"train": 24, "tune": 1, "val": 1}
    assert sum(c.info()["chars"].values()) == sum(len(t) for t in c.texts.values())
    assert c.vocab_size == len(stdlib.ALPHABET) == 98
    assert stdlib.OTHER in c.texts["train"] and "\u00e9" not in c.texts["train"] and "\r" not in c.texts["train"]
    assert c.tokenizer.decode(c.split("train")) == c.texts["train"]
    assert stdlib.StdlibCorpus(tmp_path).sha256() == c.sha256()  # deterministic
    x, y = c.batch("train", 3, 5, generator=0)
    assert x.shape == (3, 5) and torch.equal(x[:, 1:], y[:, :-1])


def test_bad_names_and_paths_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus 'shakespeare'; expected one of"):
        load_corpus("shakespeare")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        stdlib.StdlibCorpus(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no .py files"):
        stdlib.source_files(tmp_path)
    with pytest.raises(TypeError, match="path"):
        stdlib.source_files(3)
    with pytest.raises(ValueError, match="split must be one of"):
        stdlib.StdlibCorpus(make_tree(tmp_path)).split("test")


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the recorded corpus is Python 3.11's stdlib")
def test_the_real_stdlib_is_big_enough_to_scale_on():
    c = load_corpus("stdlib")
    info = c.info()
    assert info["chars"]["train"] > 10_000_000 and info["chars"]["val"] > 400_000 and info["chars"]["tune"] > 300_000
    assert info["files"]["val"] > 30 and len(info["sha256"]) == 64


def test_window_ngram_losses_agree_with_chapter_1s_model():
    g = torch.Generator().manual_seed(0)
    V = 5
    train = torch.randint(0, V, (3000,), generator=g)
    windows = torch.randint(0, V, (4, 21), generator=g)
    out = window_losses(train, windows, V, max_order=4)  # (4, 4, 20)
    for k in range(1, 5):
        m = NGramLM(k, V).fit(train)
        for i in range(4):
            start = k - 1  # positions with a full context inside the window
            want = -m.log_prob(windows[i], start=max(start, 1)) * torch.log(torch.tensor(2.0))
            got = out[k - 1, i, max(start, 1) - 1:]
            assert torch.allclose(got, want.float(), atol=1e-5), k
    # near a window's start an order-k model backs off to the context that exists
    assert torch.allclose(out[3, :, 0], out[1, :, 0]) and torch.allclose(out[3, :, 1], out[2, :, 1])


def test_ngram_level():
    levels = {1: 3.3, 2: 2.7, 3: 2.1, 4: 1.8, 5: 1.6}
    assert [ngram_level(v, levels) for v in (3.5, 3.3, 2.5, 1.9, 1.0)] == [0, 1, 2, 3, 5]
    assert ngram_level_name(0) == "worse than the unigram" and ngram_level_name(3) == "trigram"
    with pytest.raises(ValueError, match="levels"):
        ngram_level(2.0, {})


def test_ngram_levels_text_prints_every_order_in_order():
    # keys as a results file stores them (strings), given out of order: every order once, lowest first
    text = ngram_levels_text({"5": 1.2944, "1": 3.3311, "3": 2.1, "2": 2.7, "4": 1.41249})
    assert text == "unigram 3.331, bigram 2.700, trigram 2.100, 4-gram 1.412, 5-gram 1.294"
    assert ngram_levels_text({1: 3.0}, fmt=".1f") == "unigram 3.0"
    with pytest.raises(ValueError, match="levels"):
        ngram_levels_text({})


def test_ngram_baselines_give_levels_profiles_and_lines():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from seqlab.measure import draw_ngram_levels, ngram_baselines
    g = torch.Generator().manual_seed(0)
    text = torch.tensor([0, 1, 2, 3] * 500) + (torch.rand(2000, generator=g) < 0.1).long()  # nearly periodic
    windows = torch.stack([text[i:i + 33] for i in range(0, 1600, 100)])
    b = ngram_baselines(text, windows, 5, max_order=3)
    assert list(b["levels"]) == [1, 2, 3] and b["levels"][1] > b["levels"][2] > b["levels"][3]
    assert len(b["by_position"][2]) == 32 and len(b["window_losses"][3]) == len(windows)
    fig, ax = plt.subplots()
    draw_ngram_levels(ax, b["levels"])
    assert len(ax.lines) == 3
    assert [t.get_position()[0] for t in ax.texts] == [1.0] * 3 and {t.get_ha() for t in ax.texts} == {"right"}
    draw_ngram_levels(ax, b["levels"], label_at="left")
    assert [t.get_position()[0] for t in ax.texts[3:]] == [0.0] * 3 and {t.get_ha() for t in ax.texts[3:]} == {"left"}
    with pytest.raises(ValueError, match="label_at must be 'right' or 'left'"):
        draw_ngram_levels(ax, b["levels"], label_at="top")
    plt.close(fig)
