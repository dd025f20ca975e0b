"""Evaluation: metrics with known answers, pair and split protocols, and `facelens eval` on real faces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from facelens.errors import InputError
from facelens.evaluation.dataset import LabelledImage, LabelledSet, TemplateSet, read_tree
from facelens.evaluation.groups import max_min_gap, read_groups
from facelens.evaluation.identification import evaluate_identification, split_identities
from facelens.evaluation.metrics import equal_error_rate, error_curve, rates_at, roc_auc
from facelens.evaluation.pairs import tree_pairs
from facelens.evaluation.report import identification_html, verification_html
from facelens.evaluation.verification import evaluate_verification, llr_bins
from facelens.match.evidence import fit_logistic_llr
from facelens.models.registry import DEFAULT_EMBEDDER
from tests.conftest import data_path
from tests.test_cli import run

# ---------------------------------------------------------------- metrics on synthetic scores


def test_perfectly_separated_scores() -> None:
    genuine, impostor = np.linspace(0.6, 0.9, 50), np.linspace(-0.2, 0.3, 500)
    assert roc_auc(genuine, impostor) == 1.0
    eer, threshold = equal_error_rate(error_curve(genuine, impostor))
    assert eer == 0.0 and threshold == pytest.approx(0.6)
    supported = rates_at(genuine, impostor, (1e-1, 1e-2))
    assert [r.rate for r in supported] == [1.0, 1.0]
    assert all(
        r.observed_false_rate is not None and r.observed_false_rate <= r.false_rate
        for r in supported
    )


def test_identical_scores_are_chance() -> None:
    scores = np.full(100, 0.5)
    assert roc_auc(scores, scores) == 0.5
    assert equal_error_rate(error_curve(scores, scores))[0] == pytest.approx(0.5)


def test_known_auc_and_eer() -> None:
    genuine = np.array([0.9, 0.6, 0.4])
    impostor = np.array([0.5, 0.3, 0.1, 0.2])
    # 0.9 and 0.6 beat all 4 impostors, 0.4 beats 3: 11 of 12 comparisons.
    assert roc_auc(genuine, impostor) == pytest.approx(11 / 12)
    curve = error_curve(genuine, impostor)
    assert curve.far.tolist() == pytest.approx([0, 0, 0, 0.25, 0.25, 0.5, 0.75, 1.0])
    # Between thresholds 0.5 and 0.4, FAR stays 1/4 while FRR falls from 1/3 to 0.
    eer, threshold = equal_error_rate(curve)
    assert eer == pytest.approx(0.25) and threshold == pytest.approx(0.4)


def test_unsupported_far_is_null_with_a_reason() -> None:
    rng = np.random.default_rng(1)
    genuine, impostor = rng.normal(0.7, 0.1, 300), rng.normal(0.1, 0.1, 50)
    loose, strict = rates_at(genuine, impostor, (1e-1, 1e-2), "impostor pairs")
    assert loose.rate is not None and loose.threshold is not None
    assert (impostor >= loose.threshold).sum() <= 5
    assert strict.rate is None and strict.threshold is None
    assert strict.reason == "needs at least 100 impostor pairs, have 50"
    assert strict.to_dict()["tar"] is None


def test_llr_bins_follow_a_well_specified_llr() -> None:
    # Equal-variance Gaussian scores have a linear log likelihood ratio: the fitted line is right.
    rng = np.random.default_rng(3)
    genuine, impostor = rng.normal(0.5, 0.1, 20_000), rng.normal(0.1, 0.1, 200_000)
    bins = llr_bins(genuine, impostor, fit_logistic_llr(genuine, impostor))
    assert len(bins) >= 5
    assert all(b["genuine"] >= 5 and b["impostor"] >= 5 for b in bins)
    assert max(abs(b["empirical"] - b["predicted"]) for b in bins) < 0.3


def test_curve_sample_keeps_the_ends_and_order() -> None:
    rng = np.random.default_rng(2)
    curve = error_curve(rng.normal(0.6, 0.1, 5_000), rng.normal(0.0, 0.1, 50_000))
    sampled = curve.sample(100)
    assert len(sampled.far) <= 202 < len(curve.far)
    assert sampled.far[0] == 0 and sampled.far[-1] == 1 and sampled.frr[-1] == 0
    assert np.all(np.diff(sampled.far) >= 0) and np.all(np.diff(sampled.frr) <= 0)
    assert curve.to_dict()["threshold"][0] is None  # +inf as null in JSON


# ---------------------------------------------------------------- protocols on synthetic sets


def _labelled(counts: dict[str, int]) -> LabelledSet:
    images = tuple(
        LabelledImage(name, Path(f"/nowhere/{name}/{i}.png"), f"{name}/{i}.png")
        for name, count in sorted(counts.items())
        for i in range(count)
    )
    return LabelledSet(Path("/nowhere"), images, "test")


def test_tree_pairs_are_reproducible_and_valid() -> None:
    dataset = _labelled({f"p{i:02d}": 3 + i % 4 for i in range(30)})
    pairs = tree_pairs(dataset, seed=7, impostors=500, folds=5)
    again = tree_pairs(dataset, seed=7, impostors=500, folds=5)
    other = tree_pairs(dataset, seed=8, impostors=500, folds=5)
    assert pairs.sha256 == again.sha256 and pairs.sha256 != other.sha256
    assert np.array_equal(pairs.fold, again.fold)
    identity = np.array([im.identity for im in dataset.images])
    genuine_total = sum((3 + i % 4) * (2 + i % 4) // 2 for i in range(30))
    assert pairs.same.sum() == genuine_total == pairs.protocol["genuine_available"]
    assert (~pairs.same).sum() == 500
    assert np.array_equal(identity[pairs.first] == identity[pairs.second], pairs.same)
    assert np.all(pairs.first < pairs.second)
    codes = pairs.first * len(identity) + pairs.second
    assert len(np.unique(codes)) == len(codes)
    # Balanced folds: each fold holds as many impostor as genuine pairs.
    for fold in range(5):
        members = pairs.fold == fold
        assert abs(int(pairs.same[members].sum()) - int((~pairs.same[members]).sum())) <= 1


def test_tree_pairs_take_every_impostor_when_few_and_sample_genuine_when_many() -> None:
    dataset = _labelled({"a": 4, "b": 3, "c": 2})
    pairs = tree_pairs(dataset, impostors=1_000, max_genuine=5)
    assert (~pairs.same).sum() == 4 * 3 + 4 * 2 + 3 * 2
    assert pairs.same.sum() == 5 and pairs.protocol["genuine_available"] == 6 + 3 + 1
    with pytest.raises(InputError, match="only one identity"):
        tree_pairs(_labelled({"solo": 5}))


def test_read_tree_nested_and_flat(tmp_path: Path) -> None:
    nested = tmp_path / "nested"
    for name in ("alice/1.jpg", "alice/sub/2", "bob/x.pgm", ".hidden/3.jpg", "alice/.DS_Store"):
        (nested / name).parent.mkdir(parents=True, exist_ok=True)
        (nested / name).write_bytes(b"")
    (nested / "README").write_text("about")
    tree = read_tree(nested)
    assert [(im.identity, im.key) for im in tree.images] == [
        ("alice", "alice/1.jpg"),
        ("alice", "alice/sub/2"),
        ("bob", "bob/x.pgm"),
    ]
    assert tree.ignored == ("README",)
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("subject01.happy", "subject01.sad", "subject02.wink"):
        (flat / name).write_bytes(b"")
    assert read_tree(flat).identities == ["subject01", "subject02"]
    by_regex = read_tree(flat, r"subject0(\d)")
    assert by_regex.identities == ["1", "2"]


def test_group_csv(tmp_path: Path) -> None:
    csv_file = tmp_path / "groups.csv"
    csv_file.write_text("identity_or_image,group\nalice,A\nbob,B\nalice/2.jpg,B\nnobody,C\n")
    labels = read_groups(csv_file)
    images = (
        LabelledImage("alice", tmp_path / "alice/1.jpg", "alice/1.jpg"),
        LabelledImage("alice", tmp_path / "alice/2.jpg", "alice/2.jpg"),
        LabelledImage("bob", tmp_path / "bob/1.jpg", "bob/1.jpg"),
        LabelledImage("carol", tmp_path / "carol/1.jpg", "carol/1.jpg"),
    )
    groups, unmatched = labels.assign(images)
    assert groups == ["A", "B", "B", None]  # the image's own row wins over its person's
    assert unmatched == ["nobody"]
    bad = tmp_path / "bad.csv"
    bad.write_text("alice\n")
    with pytest.raises(InputError, match="row 1"):
        read_groups(bad)
    assert max_min_gap({"A": 0.9, "B": 0.7, "C": None}) == {
        "gap": pytest.approx(0.2),
        "max_group": "A",
        "min_group": "B",
    }
    assert max_min_gap({"A": 0.5, "B": 0.5})["gap"] == 0.0


def _synthetic_templates(dataset: LabelledSet, spread: float, seed: int = 0) -> TemplateSet:
    """One random unit direction per person, each image a noisy copy of it."""
    rng = np.random.default_rng(seed)
    centres = {name: rng.normal(size=64) for name in dataset.identities}
    vectors = np.stack(
        [centres[im.identity] + spread * rng.normal(size=64) for im in dataset.images]
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return TemplateSet(
        vectors.astype(np.float32), {im.key: i for i, im in enumerate(dataset.images)}
    )


def test_identification_on_synthetic_templates() -> None:
    dataset = _labelled({f"p{i:02d}": 6 for i in range(40)})
    templates = _synthetic_templates(dataset, spread=0.3)
    split = split_identities(dataset, templates, enroll=2, unknown=10, seed=3)
    assert len(split.unknown_identities) == 10
    assert len(split.gallery) == 30 * 2 and len(split.known_probes) == 30 * 4
    assert len(split.unknown_probes) == 10 * 6
    groups: list[str | None] = [
        "even" if int(im.identity[1:]) % 2 == 0 else "odd" for im in dataset.images
    ]
    result = evaluate_identification(dataset, templates, split, "synthetic", groups)
    assert result.data["rank1"] == 1.0 and result.data["cmc"][-1] == 1.0
    by_fpir = {r["fpir"]: r for r in result.data["dir_at_fpir"]}
    assert by_fpir[0.1]["dir"] == 1.0  # well-separated people: found at any threshold
    assert by_fpir[0.01]["dir"] is None and "unknown probes" in by_fpir[0.01]["reason"]
    per_group = result.data["groups"]["per_group"]
    assert sum(g["known_probes"] for g in per_group.values()) == 120
    assert sum(g["unknown_probes"] for g in per_group.values()) == 60
    # Hard case: the same people with much noisier images rank worse.
    noisy = _synthetic_templates(dataset, spread=3.0)
    hard = evaluate_identification(dataset, noisy, split, "synthetic")
    assert hard.data["rank1"] < 0.9 and hard.data["rank5"] >= hard.data["rank1"]
    page = identification_html(hard, "synthetic")
    assert page.count("<svg") == 3 and f"{100 * hard.data['rank1']:.2f}%" in page


def test_verification_report_is_self_contained() -> None:
    dataset = _labelled({f"p{i:02d}": 5 for i in range(30)})
    pairs = tree_pairs(dataset, seed=1, impostors=2_000)
    templates = _synthetic_templates(dataset, spread=1.2)  # some overlap: errors to plot
    groups: list[str | None] = ["a" if int(im.identity[1:]) < 15 else "b" for im in dataset.images]
    result = evaluate_verification(pairs, templates, DEFAULT_EMBEDDER, groups)
    data = result.data
    assert 0.9 < data["auc"] < 1 and 0 < data["eer"] < 0.2
    assert len(data["shipped_calibration"]["llr_bins"]) >= 2
    assert set(data["groups"]["per_group"]) == {"a", "b"}
    assert data["groups"]["gaps"]["eer"]["gap"] >= 0
    page = verification_html(result, "synthetic")
    assert page.count("<svg") >= 6  # ROC, DET, histogram, LLR, group bars, group ROC
    assert not re.search(r"<script|<link|<img|src=|url\((?!#)|https?://(?!www.w3.org)", page)
    assert f"{data['auc']:.5f}" in page and f"{100 * data['eer']:.2f}%" in page


# ---------------------------------------------------------------- the command on real photos


@pytest.fixture(scope="module")
def orl_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Symbolic links to the 120 photos of ORL people s1-s12, and one file that is no image."""
    orl = data_path("orl_att_faces/att_faces")
    root = tmp_path_factory.mktemp("orl_subset")
    for person in range(1, 13):
        (root / f"s{person}").mkdir()
        for photo in (orl / f"s{person}").iterdir():
            (root / f"s{person}" / photo.name).symlink_to(photo)
    (root / "s3" / "notes.pgm").write_text("not an image")
    return root


@pytest.mark.shared_data
def test_eval_verify_on_an_orl_tree(orl_subset: Path, tmp_path: Path) -> None:
    groups = tmp_path / "groups.csv"
    groups.write_text(
        "\n".join(
            [*(f"s{i},{'A' if i <= 6 else 'B'}" for i in range(1, 13)), "s1/1.pgm,B", "s99,C"]
        )
    )
    html = tmp_path / "report.html"
    result = run(
        "eval", "verify", orl_subset, "--seed", "3", "--impostors", "2000",
        "--groups", groups, "--html", html, "--json", check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # the unreadable file is reported, not fatal
    data = json.loads(result.stdout)
    assert data["images"]["unreadable"] == 1
    assert data["images"]["unreadable_images"][0]["image"] == "s3/notes.pgm"
    assert data["images"]["templates"] == 120 and data["images"]["no_face"] == 0
    assert data["genuine_pairs"] == 12 * 45 and data["impostor_pairs"] < 2000
    assert data["protocol"]["seed"] == 3 and data["protocol"]["genuine_available"] == 11 * 45 + 55
    # The same tree and seed give the same pairs, in process too.
    assert (
        data["protocol"]["pairs_sha256"]
        == tree_pairs(read_tree(orl_subset), seed=3, impostors=2000).sha256
    )
    assert data["auc"] > 0.95 and data["eer"] < 0.1
    assert 0.9 < data["accuracy_mean"] <= 1 and len(data["fold_accuracies"]) == 10
    by_far = {r["far"]: r for r in data["tar_at_far"]}
    assert by_far[1e-2]["tar"] > 0.9
    assert (
        by_far[1e-4]["tar"] is None
        and "needs at least 10,000 impostor pairs" in by_far[1e-4]["reason"]
    )
    assert len(data["det"]["far"]) == len(data["det"]["frr"]) > 10
    per_group = data["groups"]["per_group"]
    assert set(per_group) == {"A", "B"}
    # s1/1.pgm is labelled B: its 9 genuine pairs with the other s1 photos cross groups.
    assert (
        per_group["A"]["genuine_pairs"] == 6 * 45 - 9 and per_group["B"]["genuine_pairs"] == 6 * 45
    )
    assert data["groups"]["unmatched_labels"] == ["s99"]
    assert "eer" in data["groups"]["gaps"]
    page = html.read_text()
    assert page.count("<svg") >= 5 and f"{data['auc']:.5f}" in page  # ROC, DET, scores, 2 per group
    assert f"{100 * data['eer']:.2f}%" in page and "needs at least 10,000 impostor pairs" in page


@pytest.mark.shared_data
def test_eval_verify_on_a_pairs_file(tmp_path: Path) -> None:
    lfw = data_path("lfw")
    lines = (lfw / "pairs.txt").read_text().splitlines()[1:]
    chosen = [*lines[0:15], *lines[300:315], *lines[600:615], *lines[900:915]]
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("2\t15\n" + "\n".join(chosen) + "\n")
    data = json.loads(
        run("eval", "verify", pairs_file, "--images", lfw / "images_deepfunneled", "--json").stdout
    )
    assert data["protocol"]["source"] == "pairs_file" and data["protocol"]["folds"] == 2
    assert data["genuine_pairs"] + data["impostor_pairs"] + data["pairs_without_template"] == 60
    assert data["auc"] > 0.95 and data["accuracy_mean"] > 0.9
    by_far = {r["far"]: r for r in data["tar_at_far"]}
    assert by_far[1e-1]["tar"] is not None and by_far[1e-2]["tar"] is None


@pytest.mark.shared_data
def test_eval_identify_on_orl(tmp_path: Path) -> None:
    orl = data_path("orl_att_faces/att_faces")
    groups = tmp_path / "groups.csv"
    groups.write_text("\n".join(f"s{i},{'low' if i <= 20 else 'high'}" for i in range(1, 41)))
    html = tmp_path / "identify.html"
    data = json.loads(
        run("eval", "identify", orl, "--groups", groups, "--html", html, "--json").stdout
    )
    protocol = data["protocol"]
    assert protocol["identities"] == 40 and len(protocol["unknown_identities"]) == 10
    assert protocol["gallery_templates"] == 30 and protocol["known_probes"] == 270
    assert protocol["unknown_probes"] == 100
    assert data["rank1"] > 0.9 and data["rank5"] >= data["rank1"]
    by_fpir = {r["fpir"]: r for r in data["dir_at_fpir"]}
    assert by_fpir[1e-1]["dir"] > 0.8 and by_fpir[1e-1]["fpir_observed"] <= 0.1
    per_group = data["groups"]["per_group"]
    assert sum(g["known_probes"] for g in per_group.values()) == 270
    page = html.read_text()
    assert page.count("<svg") == 4 and f"{100 * data['rank1']:.2f}%" in page


@pytest.mark.shared_data
def test_yale_flat_folder_without_extensions() -> None:
    yale = read_tree(data_path("yalefaces/yalefaces"))
    assert len(yale.identities) == 15 and len(yale.images) == 164
    assert "subject01.happy" in {image.key for image in yale.images}


def test_eval_help() -> None:
    for command in ("verify", "identify"):
        assert "Usage:" in run("eval", command, "--help").stdout


@pytest.mark.shared_data
def test_eval_lfw_on_a_one_fold_pairs_file(tmp_path: Path) -> None:
    """One fold has no other fold to pick its threshold on: picked on itself, and said so."""
    lfw = data_path("lfw")
    lines = (lfw / "pairs.txt").read_text().splitlines()[1:]
    (tmp_path / "pairs.txt").write_text("1\t8\n" + "\n".join([*lines[0:8], *lines[300:308]]) + "\n")
    (tmp_path / "images_deepfunneled").symlink_to(lfw / "images_deepfunneled")
    data = json.loads(run("eval", "lfw", tmp_path, "--json").stdout)
    assert data["folds"] == 1 and data["threshold_on_same_fold"] is True
    assert data["accuracy_mean"] >= 0.9 and len(data["thresholds"]) == 1


def test_a_pairs_file_without_folds_is_refused(tmp_path: Path) -> None:
    from facelens.evaluation.lfw import read_pairs

    (tmp_path / "pairs.txt").write_text("0\t300\n")
    with pytest.raises(InputError, match="at least one fold"):
        read_pairs(tmp_path / "pairs.txt")
