"""The ablation study (retina_edu.ablations): its settings, its imbalance count against a hand
count, its summaries against hand arithmetic, Figure 4's curves, and the smoke run end to end."""

import json
import math
import os
import shutil
import statistics
from pathlib import Path

import pytest
import torch

from retina_edu import RetinaNet, ablations
from retina_edu.anchors import anchors_for_image
from retina_edu.boxes import box_iou
from retina_edu.data import CocoDetection, collate, make_synthetic_coco
from retina_edu.evaluate import evaluate_model
from retina_edu.matching import BACKGROUND, IGNORED, match_anchors

BY_NAME = {(s.variant, s.name): s for s in ablations.SETTINGS}
HIGH = ablations.HIGH


def test_settings_cover_the_paper_tables():
    rows = {g: [s for s in ablations.SETTINGS if s.group == g] for g in ablations.GROUPS}
    assert [s.changes["focal_alpha"] for s in rows["1a"]] == [0.25, 0.5, 0.75, 0.9, 0.99]
    pairs = [(s.changes["focal_gamma"], s.changes["focal_alpha"]) for s in rows["1b"]]
    assert pairs == [(0, 0.75), (0.1, 0.75), (0.2, 0.75), (0.5, 0.5), (1, 0.25), (2, 0.25), (5, 0.25)]
    anchors_per_position = [
        ablations.study_config(ablations.VARIANTS[HIGH], **s.changes).num_anchors_per_location
        for s in rows["1c"]
    ]
    assert anchors_per_position == [1, 2, 3, 3, 6, 9, 12]  # scales x ratios
    # the axis: every variant has FL and the same CE alphas
    for variant in ablations.VARIANTS:
        assert (variant, "FL gamma=2.0 alpha=0.25") in BY_NAME
        assert all((variant, f"CE alpha={a}") in BY_NAME for a in ablations.AXIS_ALPHAS)


def test_four_scales_are_quarter_octaves():
    sizes = ablations.anchors(4, 3)["anchor_sizes"][0]  # P3, base 16
    assert sizes == pytest.approx((16, 16 * 2**0.25, 16 * 2**0.5, 16 * 2**0.75))


def test_run_key_shares_identical_models_and_separates_others():
    key = ablations.run_key
    # Table 1a's alpha=.75 is Table 1b's gamma=0 row; 1b's gamma=2 is 1c's 3x3 and the axis's FL point
    assert key(BY_NAME[HIGH, "CE alpha=0.75"]) == key(BY_NAME[HIGH, "FL gamma=0.0 alpha=0.75"])
    assert key(BY_NAME[HIGH, "FL gamma=2.0 alpha=0.25"]) == key(BY_NAME[HIGH, "3 scale(s) x 3 ratio(s)"])
    # the same loss on another variant, and the prior rows (SGD, paper heads), are other runs
    assert key(BY_NAME["dense", "CE alpha=0.75"]) != key(BY_NAME[HIGH, "CE alpha=0.75"])
    assert key(BY_NAME[HIGH, "FL pi=0.01"]) != key(BY_NAME[HIGH, "FL gamma=2.0 alpha=0.25"])
    assert (
        len({key(s) for s in ablations.SETTINGS}) == 46
    )  # 3 x 4 axis + 2 + 4 + 5 + 6 new in 1a, prior, 1b, 1c + heads: 3 paper, 2 GroupNorm, 3 x 4 no norm
    # the heads follow-up trains the paper's heads as the study trains (AdamW), not as §4.1 does
    assert key(BY_NAME[HIGH, "CE alpha=0.75 paper heads"]) != key(BY_NAME[HIGH, "CE pi=0.01"])


def test_prior_rows_train_as_the_paper():
    for s in (s for s in ablations.SETTINGS if s.group == "prior"):
        cfg = ablations.study_config(ablations.VARIANTS[HIGH], **s.changes)
        assert (cfg.head_convs, cfg.head_norm) == (4, "none")
        assert s.train_changes == {
            "optimizer": "sgd",
            "lr": 0.01,
            "warmup_steps": 0,
            "grad_clip": None,
            "schedule": "step",
        }
    assert {BY_NAME[HIGH, f"{loss} bias 0"].changes["prior_prob"] for loss in ("CE", "FL")} == {0.5}


def test_the_heads_follow_up_changes_only_the_subnets_and_is_run_only_when_named():
    for s in (s for s in ablations.SETTINGS if s.group == "heads"):
        design = s.design
        same_loss = BY_NAME[s.variant, s.name.removesuffix(" " + design)]  # "CE alpha=0.75", the study's
        study = ablations.study_config(ablations.VARIANTS[s.variant])
        cfg = ablations.study_config(ablations.VARIANTS[s.variant], **s.changes)
        assert cfg == study.replace(**same_loss.changes, **ablations.HEAD_DESIGNS[design])
        assert s.train_changes == {}
    # without GroupNorm, every point of the imbalance axis; the paper's heads at the highest only
    axis = {(s.variant, s.name) for s in ablations.SETTINGS if s.group == "imbalance"}
    assert {(v, f"{n} no head norm") for v, n in axis} <= set(BY_NAME)
    assert {s.variant for s in ablations.SETTINGS if s.name.endswith("paper heads")} == {HIGH}
    eight = ablations.study_config(
        ablations.VARIANTS[HIGH], **BY_NAME[HIGH, "CE alpha=0.75 8 channels per group"].changes
    )
    assert (eight.head_norm, eight.fpn_channels // eight.head_norm_groups) == ("group", 8)
    assert ablations.study_config(ablations.VARIANTS[HIGH]).head_norm == "group"
    default = ablations.build_parser().parse_args([]).groups
    assert "heads" not in default and set(default) | {"heads"} == set(ablations.GROUPS)


def test_plan_is_seed_major_and_runs_each_model_once():
    todo = ablations.plan(["1a", "1b"], seeds=2, smoke=False)
    keys = [(ablations.run_key(s), seed) for s, seed in todo]
    assert len(keys) == len(set(keys)) == 2 * (5 + 6)  # 1b's gamma=0 row is 1a's alpha=.75
    assert [seed for s, seed in todo[:5]] == [0] * 5  # all of 1a at seed 0 before seed 1


def test_plan_of_named_settings_runs_only_those():
    names = ["CE alpha=0.25", "FL gamma=2.0 alpha=0.25"]
    todo = ablations.plan(["1a", "1b"], seeds=2, smoke=False, names=names)
    assert [(s.name, seed) for s, seed in todo] == [(n, seed) for n in names for seed in (0, 1)]


def test_plan_on_named_variants_runs_only_theirs():
    todo = ablations.plan(["imbalance"], seeds=1, smoke=False, names=["CE alpha=0.99"], variants=["sparse"])
    assert [(s.variant, s.name) for s, _ in todo] == [("sparse", "CE alpha=0.99")]
    todo = ablations.plan(["imbalance"], seeds=1, smoke=False, variants=["dense", "sparse"])
    assert {s.variant for s, _ in todo} == {"dense", "sparse"}
    assert len(todo) == 2 * (len(ablations.AXIS_ALPHAS) + 1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    ann = make_synthetic_coco(root, "val", num_images=6, seed=1, image_size=192, min_objects=1, max_objects=2)
    return CocoDetection(ann, root / "val")


def test_imbalance_is_the_matchers_count(tiny):
    config = ablations.study_config(ablations.VARIANTS[HIGH])
    counts = ablations.measure_imbalance(tiny, config, images=6)
    # by hand: every anchor of a 192-px image is foreground, background or ignored
    # 9 anchors x (24^2 + 12^2 + 6^2 + 3^2 + 2^2) positions = 6921 per image
    assert counts["anchors_per_image"] == 6921
    assert counts["foreground"] + counts["background"] + counts["ignored"] == 6 * 6921
    grids = [(24, 24), (12, 12), (6, 6), (3, 3), (2, 2)]  # ceil(192 / stride), strides 8..128
    anchors = anchors_for_image((192, 192), grids, config.anchor_sizes, config.aspect_ratios)
    fg = bg = 0
    for i in range(6):
        m = match_anchors(box_iou(tiny[i][1]["boxes"], anchors))
        fg, bg = fg + int((m >= 0).sum()), bg + int((m == BACKGROUND).sum())
    assert (counts["foreground"], counts["background"]) == (fg, bg)
    assert counts["ratio"] == round(bg / fg, 1)


def _run(key, seed, ap):
    # one record of runs.json: AP 0.1 at step 100, ``ap`` at the end (step 200)
    return {"key": key, "seed": seed, "steps": 200, "diverged": False, "AP": ap, "AP50": ap, "AP75": ap,
            "curve": [[100, 0.1], [200, ap]], "seconds": 1.0}  # fmt: skip


def test_summaries_by_hand():
    key = ablations.run_key
    ce5, ce75, fl = (BY_NAME[HIGH, n] for n in ("CE alpha=0.5", "CE alpha=0.75", "FL gamma=2.0 alpha=0.25"))
    runs = [
        _run(key(ce5), 0, 0.20), _run(key(ce5), 1, 0.24),
        _run(key(ce75), 0, 0.30), _run(key(ce75), 1, 0.26),
        _run(key(fl), 0, 0.40), _run(key(fl), 1, 0.31),
    ]  # fmt: skip
    rows = ablations.summarise(runs)
    row = next(r for r in rows if r["group"] == "1a" and r["setting"] == "CE alpha=0.75")
    assert (row["seeds"], row["AP_mean"]) == (2, 0.28)
    assert row["AP_std"] == pytest.approx(0.0283, abs=1e-4)  # sqrt(((.02)^2 + (.02)^2) / 1)
    assert row["last_quarter_rise"] == pytest.approx(((0.30 - 0.1) + (0.26 - 0.1)) / 2)
    not_run = next(r for r in rows if r["setting"] == "CE alpha=0.9")
    assert (not_run["seeds"], not_run["AP_mean"]) == (0, None)
    axis = ablations.imbalance_axis(rows, {HIGH: {"ratio": 916.0}})
    assert len(axis) == 1 and axis[0]["best_CE"] == "CE alpha=0.75"  # 0.28 > 0.22
    # paired by seed: FL - CE = 0.10 and 0.05
    assert axis[0]["delta_AP"] == pytest.approx(0.075) and axis[0]["delta_std"] == pytest.approx(
        0.0354, abs=1e-4
    )


def test_the_imbalance_axis_of_a_head_design_reads_only_that_designs_rows():
    key = ablations.run_key
    study = [BY_NAME["dense", n] for n in ("CE alpha=0.75", "FL gamma=2.0 alpha=0.25")]
    no_norm = [BY_NAME["dense", f"{n} no head norm"] for n in ("CE alpha=0.5", "CE alpha=0.75")]
    no_norm_fl = BY_NAME["dense", "FL gamma=2.0 alpha=0.25 no head norm"]
    runs = [
        _run(key(study[0]), 0, 0.50), _run(key(study[1]), 0, 0.40),
        _run(key(no_norm[0]), 0, 0.61), _run(key(no_norm[1]), 0, 0.55), _run(key(no_norm_fl), 0, 0.58),
    ]  # fmt: skip
    rows, ratio = ablations.summarise(runs), {"dense": {"ratio": 73.0}}
    (mine,) = ablations.imbalance_axis(rows, ratio)
    assert (mine["best_CE"], mine["delta_AP"]) == ("CE alpha=0.75", pytest.approx(-0.10))
    (theirs,) = ablations.imbalance_axis(rows, ratio, "no head norm")
    assert (theirs["best_CE"], theirs["CE_alphas_tried"]) == ("CE alpha=0.5 no head norm", 2)
    assert (theirs["FL_AP"], theirs["delta_AP"]) == (0.58, pytest.approx(-0.03))
    assert ablations.imbalance_axis(rows, ratio, "paper heads") == []  # none of its runs


def test_a_follow_ups_folder_gets_its_own_summary_and_figures(tmp_path):
    key, losses = ablations.run_key, (("CE alpha=0.75", 0.50), ("FL gamma=2.0 alpha=0.25", 0.60))
    no_norm = [
        _run(key(BY_NAME[v, f"{n} no head norm"]), 0, ap) for v in ablations.VARIANTS for n, ap in losses
    ]
    study = [_run(key(BY_NAME[HIGH, n]), 0, ap) for n, ap in losses]  # the study's heads, rerun
    variants, models = ablations.smoke_variants(), tmp_path / "models"
    args = (variants, tmp_path / "data", models, {"steps": 200})
    traced = BY_NAME[HIGH, "CE alpha=0.75 no head norm"]  # seed 0's weights at hand for this one only
    torch.manual_seed(0)
    model = RetinaNet(ablations.study_config(variants[HIGH], **traced.changes))
    models.mkdir()
    torch.save(model.state_dict(), models / f"{ablations.model_file_stem(traced, 0)}.pt")
    summary = ablations.write_results(tmp_path, no_norm + study, *args, ("heads",))
    rows = summary["rows"]
    assert all(r["seeds"] for r in rows if r["group"] != "heads")  # the study's rows only where run
    assert {r["setting"] for r in rows if r["group"] == "imbalance"} == {n for n, _ in losses}
    heads = [s for s in ablations.SETTINGS if s.group == "heads"]  # every one, run or not
    assert [r["setting"] for r in rows if r["group"] == "heads"] == [s.name for s in heads]
    assert [a["variant"] for a in summary["heads_axis"]["no head norm"]] == list(ablations.VARIANTS)
    assert summary["heads_axis"]["paper heads"] == [] and summary["axis"][0]["variant"] == HIGH
    files = ["boxes.json", "channels.json", "figure4.json", "imbalance.png", "summary.json"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == files
    _, val_set = variants[HIGH].datasets(tmp_path / "data")
    measured = {
        "channels.json": {traced.name: ablations.class_channels(model, val_set)},
        "figure4.json": {traced.name: ablations.figure4(model, val_set)},
        "boxes.json": {traced.name: ablations.box_precision(model, val_set)},
    }
    for name, values in measured.items():
        assert json.loads((tmp_path / name).read_text()) == values, name
    shutil.rmtree(models)  # a clone without the weights keeps what was measured
    ablations.write_results(tmp_path, no_norm + study, *args, ("heads",))
    for name, values in measured.items():
        assert json.loads((tmp_path / name).read_text()) == values, name
    # the study's folder: its own figures, and no follow-up's rows where it holds none of their runs
    summary = ablations.write_results(
        tmp_path, study, *args, tuple(ablations.build_parser().parse_args([]).groups)
    )
    assert {r["group"] for r in summary["rows"]} == set(ablations.GROUPS) - set(ablations.FOLLOW_UPS)
    for name in ("figure4.json", "table1.png", "curves.png"):
        assert (tmp_path / name).is_file(), name


def test_paired_by_seed_skips_seeds_one_side_lacks():
    # FL has three seeds, CE two (seed 2 not run): only seeds 0 and 1 pair
    focal, ce = {"0": 0.86, "1": 0.86, "2": 0.85}, {"0": 0.85, "1": 0.82}
    assert ablations.paired_by_seed(focal, ce) == pytest.approx([0.01, 0.04])
    assert ablations.paired_by_seed(ce, focal) == pytest.approx([-0.01, -0.04])


def test_two_budgets_by_hand():
    ce, fl = (BY_NAME[HIGH, n] for n in ("CE alpha=0.99", "FL gamma=2.0 alpha=0.25"))
    short = [_run(ablations.run_key(ce), s, ap) for s, ap in ((0, 0.20), (1, 0.22), (2, 0.18))]
    long = [
        {**_run(ablations.run_key(ce), 0, 0.30), "steps": 400, "curve": [[200, 0.24], [400, 0.30]]},
        {**_run(ablations.run_key(ce), 1, 0.34), "steps": 400, "curve": [[200, 0.26], [400, 0.34]]},
    ]
    (row,) = ablations.compare_budgets(short, long, names=("CE alpha=0.99", fl.name))  # no FL runs
    assert (row["short_steps"], row["short_AP"], row["short_std"]) == (200, 0.2, 0.02)
    assert (row["long_steps"], row["long_seeds"], row["long_AP"]) == (400, 2, 0.32)
    assert row["long_curve"] == [[200, 0.25], [400, 0.32]]
    assert row["last_quarter_rise"] == pytest.approx(0.07)
    assert row["long_std"] == pytest.approx(0.0283, abs=1e-4) and row["plateau"] is False  # .07 > .028
    flat = [{**r, "curve": [[200, r["AP"] - 0.01], [400, r["AP"]]]} for r in long]
    assert ablations.compare_budgets(short, flat, names=("CE alpha=0.99",))[0]["plateau"] is True
    figure = ablations.plot_budgets([short, long], names=("CE alpha=0.99",), colours=("tab:red",))
    lines, labels = figure.axes[0].get_legend_handles_labels()
    assert labels == ["CE α=0.99, 400 steps", "CE α=0.99, 200 steps"]  # the longest first
    assert [line.get_color() for line in lines] == ["tab:red", "tab:red"]


def test_two_axes_by_hand():
    key = ablations.run_key
    ce5, ce75, fl = (
        BY_NAME["dense", n] for n in ("CE alpha=0.5", "CE alpha=0.75", "FL gamma=2.0 alpha=0.25")
    )
    short_runs = [
        _run(key(ce5), 0, 0.30), _run(key(ce5), 1, 0.32),
        _run(key(ce75), 0, 0.50), _run(key(ce75), 1, 0.46),
        _run(key(fl), 0, 0.38), _run(key(fl), 1, 0.40),
    ]  # fmt: skip
    # the long budget reran only the α that won at the short one; its curves end 0.01 and 0.05 up
    long_runs = [
        {**_run(key(ce75), 0, 0.80), "curve": [[100, 0.79], [200, 0.80]]},
        {**_run(key(ce75), 1, 0.84), "curve": [[100, 0.83], [200, 0.84]]},
        {**_run(key(fl), 0, 0.86), "curve": [[100, 0.81], [200, 0.86]]},
        {**_run(key(fl), 1, 0.86), "curve": [[100, 0.81], [200, 0.86]]},
    ]
    ratio = {"dense": {"ratio": 73.0}}
    short, long = (
        {"axis": ablations.imbalance_axis(rows, ratio), "rows": rows}
        for rows in (ablations.summarise(short_runs), ablations.summarise(long_runs))
    )
    (row,) = ablations.compare_axes(short, long)
    assert (row["variant"], row["ratio"]) == ("dense", 73.0)
    assert row["short"]["best_CE"] == row["long"]["best_CE"] == "CE alpha=0.75"
    assert (row["short"]["CE_alphas_tried"], row["long"]["CE_alphas_tried"]) == (2, 1)
    assert row["short"]["delta_AP"] == pytest.approx(-0.09)  # (.38 - .50 + .40 - .46) / 2
    assert row["long"]["delta_AP"] == pytest.approx(0.04)  # (.86 - .80 + .86 - .84) / 2
    # CE rose 0.01 against a spread of 0.028: a plateau; FL rose 0.05 with no spread at all: none
    assert (row["CE_rise"], row["CE_plateau"]) == (pytest.approx(0.01), True)
    assert (row["FL_rise"], row["FL_plateau"]) == (pytest.approx(0.05), False)
    figure = ablations.plot_imbalance({"200 steps": long["axis"], "100 steps": short["axis"]})
    labels = figure.axes[1].get_legend_handles_labels()[1]
    assert labels[:2] == ["best α-balanced CE, 200 steps", "FL γ=2, α=.25, 200 steps"]  # the first first


def test_figure4_curves_are_distributions(tiny):
    torch.manual_seed(0)
    model = RetinaNet(ablations.study_config(ablations.VARIANTS[HIGH]))
    curves = ablations.figure4(model, tiny, images=6)
    assert curves["counts"]["positive"] > 0 and curves["counts"]["negative"] > 1000
    for gamma in ablations.FIGURE4_GAMMAS:
        for kind in ("positive", "negative"):
            v = torch.tensor(curves[f"gamma={gamma} {kind}"])
            assert v[0] >= 0 and abs(v[-1] - 1) < 1e-4 and (v.diff() >= -1e-6).all()
    # a larger gamma concentrates the negatives' loss on fewer samples: the hardest 1% carry more
    assert ablations.hardest_share(curves, 2.0, "negative", 0.01) > ablations.hardest_share(
        curves, 0.0, "negative", 0.01
    )


def test_figure4_splits_a_ce_models_own_loss_as_torch_does(tiny):
    torch.manual_seed(0)
    config = ablations.study_config(ablations.VARIANTS[HIGH], focal_gamma=0.0, focal_alpha=0.75)
    model = RetinaNet(config)
    own = ablations.figure4(model, tiny, images=6)["own"]
    # the same pairs by hand: γ = 0 is α-balanced BCE, which torch computes on its own
    batch, targets = collate([tiny[i] for i in range(6)])
    with torch.no_grad():
        x, _, targets = model.preprocess(batch, targets)
        features = model.fpn(model.trunk(x))
        logits, _ = model.head(features)
        anchors = model.anchors(tuple(x.shape[-2:]), features)
    pos = neg = 0.0
    n_pos, p_pos = 0, []
    for b, t in enumerate(targets):
        matches = match_anchors(box_iou(t["boxes"], anchors))
        onehot = torch.zeros_like(logits[b])
        onehot[matches >= 0, t["labels"][matches[matches >= 0]]] = 1
        kept, y = logits[b][matches != IGNORED], onehot[matches != IGNORED]
        bce = torch.nn.functional.binary_cross_entropy_with_logits(kept, y, reduction="none")
        pos += 0.75 * bce[y == 1].sum().item()
        neg += 0.25 * bce[y == 0].sum().item()
        n_pos += int((y == 1).sum())
        p_pos.append(kept[y == 1].sigmoid())
    assert own["alpha"] == 0.75 and own["gamma"] == 0.0
    assert own["positive loss per positive"] == pytest.approx(pos / n_pos, rel=1e-3)
    assert own["negative loss per positive"] == pytest.approx(neg / n_pos, rel=1e-3)
    assert own["positive p mean"] == pytest.approx(torch.cat(p_pos).mean().item(), abs=1e-5)
    # an untrained head predicts the prior π = .01 for every pair (§4.1)
    assert own["negative p median"] == pytest.approx(0.01, abs=0.005)


def _inputs_by_index(model, module, dataset, images):
    """The input of the class subnet's ``module`` (C values) at each foreground and each background
    anchor, found by index arithmetic one anchor at a time: anchor n of level l sits at position
    (n // A) of that level's H·W grid, row-major, as the head orders its outputs."""
    hidden = []
    hook = module.register_forward_pre_hook(lambda m, i: hidden.append(i[0].clone()))
    batch, targets = collate([dataset[i] for i in range(images)])
    with torch.no_grad():
        x, _, targets = model.preprocess(batch, targets)
        _, _, anchors, _ = model.dense_outputs(x)
    hook.remove()
    a = model.config.num_anchors_per_location
    starts = [0]
    for h in hidden:
        starts.append(starts[-1] + h.shape[2] * h.shape[3] * a)
    found = {"foreground": [], "background": []}
    for b, t in enumerate(targets):
        matches = match_anchors(box_iou(t["boxes"], anchors))
        for n, m in enumerate(matches.tolist()):
            kind = "foreground" if m >= 0 else "background" if m == BACKGROUND else None
            if kind is None:
                continue
            level = max(i for i, s in enumerate(starts[:-1]) if s <= n)
            position = (n - starts[level]) // a
            width = hidden[level].shape[3]
            found[kind].append(hidden[level][b, :, position // width, position % width])
    return found


def _dead_by_index(model, dataset, images):
    """dead_features by index arithmetic: the predictor's input, anchor by anchor."""
    found = _inputs_by_index(model, model.head.class_subnet.predictor, dataset, images)
    return {kind: float((torch.stack(v) == 0).float().mean()) for kind, v in found.items()}


def test_dead_features_are_counted_where_each_anchor_sits(tiny):
    torch.manual_seed(0)
    model = RetinaNet(ablations.study_config(ablations.VARIANTS[HIGH]))
    shares = ablations.dead_features(model, tiny, images=3)
    by_index = _dead_by_index(model, tiny, 3)
    assert 0.2 < shares["background"] < 0.8  # an untrained subnet's ReLU passes about half
    for kind in ("foreground", "background"):
        assert shares[kind] == pytest.approx(by_index[kind], abs=1e-4)


@pytest.mark.parametrize("head_norm", ["group", "none"])
def test_class_channels_are_the_last_relus_input_where_each_anchor_sits(tiny, head_norm):
    torch.manual_seed(0)
    model = RetinaNet(ablations.study_config(ablations.VARIANTS[HIGH], head_norm=head_norm))
    relu = model.head.class_subnet.convs[-1]
    assert isinstance(relu, torch.nn.ReLU)
    channels = ablations.class_channels(model, tiny, images=3)
    found = _inputs_by_index(model, relu, tiny, 3)
    for kind, name in (("foreground", "objects"), ("background", "background")):
        by_hand = torch.stack(found[kind])  # (anchors, C)
        assert channels[name] == pytest.approx(by_hand.mean(0).tolist(), abs=1e-4)
        assert channels[f"{name}_on"] == pytest.approx((by_hand > 0).float().mean(0).tolist(), abs=1e-4)
    assert 0 < statistics.mean(channels["background_on"]) < 1  # an untrained channel is on in places
    if head_norm == "group":  # GroupNorm's output is centred, and negative in places: before the ReLU
        assert min(channels["objects"] + channels["background"]) < 0


def test_class_channels_push_is_the_predictors_total_weight(tiny):
    torch.manual_seed(0)
    model = RetinaNet(ablations.study_config(ablations.VARIANTS[HIGH]))
    predictor = model.head.class_subnet.predictor  # (A·K, C, 3, 3)
    with torch.no_grad():
        predictor.weight.zero_()
        predictor.weight[:, 0] = 1.0  # channel 0 raises every class logit of every anchor
        predictor.weight[2, 1, 1, 1] = -0.5  # channel 1 lowers one logit through the kernel's centre
    push = ablations.class_channels(model, tiny, images=1)["push"]
    assert push[:3] == [predictor.weight.shape[0] * 9, -0.5, 0.0]


def test_images_without_a_matched_object_are_refused_not_measured_as_nan(tiny, tmp_path):
    coco = json.loads(tiny.ann_file.read_text())
    empty = tmp_path / "no_objects.json"
    empty.write_text(json.dumps({**coco, "annotations": []}))
    dataset = CocoDetection(empty, tiny.image_dir)
    model = RetinaNet(ablations.study_config(ablations.VARIANTS[HIGH]))
    for measure in (
        ablations.dead_features,
        ablations.class_channels,
        ablations.figure4,
        ablations.box_precision,
    ):
        with pytest.raises(ValueError, match="no anchor matches an object in the first 2 images"):
            measure(model, dataset, images=2)


def test_box_precision_against_pycocotools_and_the_anchors_iou(tiny):
    torch.manual_seed(0)
    config = ablations.study_config(ablations.VARIANTS[HIGH], tiny.num_classes)
    model = RetinaNet(config)
    predictor = model.head.box_subnet.predictor
    torch.nn.init.zeros_(predictor.weight)  # every box delta 0: each anchor's box is the anchor
    torch.nn.init.zeros_(predictor.bias)
    measured = ablations.box_precision(model, tiny, images=6)
    stats = evaluate_model(model, tiny, progress=False, verbose=False).stats  # pycocotools' summary
    ap = measured["AP_by_iou"]
    assert measured["iou_thresholds"] == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert ap[0] == pytest.approx(stats["AP50"], abs=1e-5) and ap[5] == pytest.approx(stats["AP75"], abs=1e-5)
    assert statistics.mean(ap) == pytest.approx(stats["AP"], abs=1e-5)
    # by hand: the IoU of each object's foreground anchors with it (192-px images, as above)
    grids = [(24, 24), (12, 12), (6, 6), (3, 3), (2, 2)]
    anchors = anchors_for_image((192, 192), grids, config.anchor_sizes, config.aspect_ratios)
    means, bests, worsts = [], [], []
    for i in range(6):
        iou = box_iou(tiny[i][1]["boxes"], anchors)
        matches = match_anchors(iou)
        for j in range(len(iou)):
            mine = iou[j, matches == j]
            if len(mine):
                means.append(mine.mean().item())
                bests.append(mine.max().item())
                worsts.append(mine.min().item())
    assert measured["objects"] == len(means) > 0
    assert measured["candidates_mean"] == pytest.approx(statistics.mean(means), abs=1e-5)
    assert measured["candidates_best"] == pytest.approx(statistics.mean(bests), abs=1e-5)
    top = measured["top_scored"]  # each object's is one of its matched anchors' IoU
    assert statistics.mean(worsts) - 1e-5 <= top <= statistics.mean(bests) + 1e-5


def test_a_subnet_dead_everywhere_or_nowhere(tiny):
    torch.manual_seed(0)
    model = RetinaNet(ablations.study_config(ablations.VARIANTS[HIGH], head_norm="none"))
    last = model.head.class_subnet.convs[-2]  # the last conv before the ReLU
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-1.0)  # ReLU(-1) = 0 at every position
        assert ablations.dead_features(model, tiny, images=2) == {"foreground": 1.0, "background": 1.0}
        last.bias.fill_(1.0)
        assert ablations.dead_features(model, tiny, images=2) == {"foreground": 0.0, "background": 0.0}


def test_smoke_study_end_to_end(tmp_path, capsys):
    summary = ablations.main(["--smoke", "--out", str(tmp_path), "--workers", "2"])
    runs = json.loads((tmp_path / "runs.json").read_text())
    assert len(runs) == 8 and all(len(r["curve"]) == ablations.EVAL_POINTS for r in runs)
    for r in runs:  # the dead features measured where the AP is, shares in [0, 1]
        assert [d[0] for d in r["dead_features"]] == [c[0] for c in r["curve"]]
        assert all(0 <= share <= 1 for d in r["dead_features"] for share in d[1:])
    assert [a["variant"] for a in summary["axis"]] == list(ablations.VARIANTS)
    ratios = [a["ratio"] for a in summary["axis"]]
    assert ratios == sorted(ratios) and ratios[-1] / ratios[0] > 5  # the axis spans the imbalance
    for name in ("summary.json", "figure4.json", "imbalance.png", "table1.png", "curves.png", "figure4.png"):
        assert (tmp_path / name).is_file(), name
    # resumable: a second invocation makes no run
    ablations.main(["--smoke", "--out", str(tmp_path)])
    assert "0 runs to make, 8 already" in capsys.readouterr().out
    # a clone without the weights (not committed) keeps Figure 4's curves when it rewrites the summary
    curves = json.loads((tmp_path / "figure4.json").read_text())
    assert len(curves) == 2
    shutil.rmtree(tmp_path / "models")
    ablations.main(["--smoke", "--out", str(tmp_path), "--report"])
    assert json.loads((tmp_path / "figure4.json").read_text()) == curves


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--steps", "0"], "--steps: must be >= 1"),
        (["--seeds", "-1"], "--seeds: must be >= 1"),
        (["--groups", "1d"], "--groups: invalid choice"),
        (["--out", "/proc/forbidden"], "--out /proc/forbidden"),
        (["--settings", "CE alpha=0.3"], "--settings: invalid choice: 'CE alpha=0.3'"),
        (["--variants", "sparse256"], "--variants: invalid choice: 'sparse256'"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ablations.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_runs_of_another_schedule_are_kept_and_refused(tmp_path, capsys):
    runs = [{"key": "k", "seed": 0, "steps": 800, "AP": 0.5}]
    (tmp_path / "runs.json").write_text(json.dumps(runs))
    with pytest.raises(SystemExit) as exit_info:
        ablations.main(["--steps", "1600", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "runs of 800 steps; give --steps 1600 another --out" in capsys.readouterr().err
    assert json.loads((tmp_path / "runs.json").read_text()) == runs  # nothing lost


def test_a_diverged_run_keeps_its_loss_at_step_0_and_says_when(tmp_path):
    # SGD at lr 1e4 without clipping: step 0's loss is finite (no update yet), a later one is not.
    setting = ablations.Setting(
        "test", "lr 1e4", "dense", train_changes={"optimizer": "sgd", "lr": 1e4, "grad_clip": None}
    )
    variant = ablations.smoke_variants()["dense"]
    record = ablations.run_one(setting, variant, seed=0, steps=8, data_root=tmp_path, models=None)
    assert record["diverged"] and record["AP"] == 0.0
    assert math.isfinite(record["loss_step0"]) and record["diverged_at_step"] >= 1
    assert math.isfinite(record["max_loss_before"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the record names the GPU")
def test_the_record_names_the_cpu_model_and_cores():
    text = ablations.hardware()
    assert text.endswith(f", {os.cpu_count()} CPU cores, no GPU")
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # Linux: the model the kernel reports, e.g. "AMD EPYC"
        models = {
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        }
        assert any(text.startswith(model) for model in models), (text, models)


# ------------------------------------------------------------------------------- --trunk
def _saved_model(path: Path, seed: int, **changes) -> Path:
    """A study model's state dict as a run saves it, initialised from ``seed``."""
    torch.manual_seed(seed)
    model = RetinaNet(ablations.study_config(ablations.VARIANTS[HIGH], **changes))
    torch.save(model.state_dict(), path)
    return path


def test_a_trunk_run_starts_from_the_files_trunk_and_the_seeds_fpn_and_heads(tmp_path):
    saved = _saved_model(tmp_path / "trained.pt", seed=7)
    setting, variant = BY_NAME[(HIGH, "CE alpha=0.75")], ablations.VARIANTS[HIGH]
    fresh = ablations.build_model(setting, variant, 5, seed=0)
    started = ablations.build_model(setting, variant, 5, seed=0, trunk=saved)
    file = torch.load(saved, weights_only=True)
    for name, value in started.state_dict().items():
        expected = file[name] if name.startswith("trunk.") else fresh.state_dict()[name]
        assert torch.equal(value, expected), name
    # the file's trunk is not the fresh one, so the check above can tell them apart
    assert not torch.equal(file["trunk.stem.0.weight"], fresh.state_dict()["trunk.stem.0.weight"])


def test_a_trunk_run_records_which_weights_it_started_from(tmp_path):
    saved = _saved_model(tmp_path / "trained.pt", seed=7)
    out = tmp_path / "out"
    argv = ["--smoke", "--settings", "CE alpha=0.75", "--variants", "dense", "--workers", "1"]
    summary = ablations.main([*argv, "--out", str(out), "--trunk", str(saved)])
    sha1 = ablations.file_sha1(saved)
    assert len(sha1) == 12 and sha1 != ablations.file_sha1(_saved_model(tmp_path / "other.pt", seed=8))
    assert summary["meta"]["trunk"] == {"file": str(saved), "sha1": sha1}
    (record,) = json.loads((out / "runs.json").read_text())
    assert record["trunk"] == {"file": "trained.pt", "sha1": sha1}


def _bad_trunk(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pt"
    if kind == "corrupt":
        path.write_bytes(b"not a model at all")
    elif kind == "no-trunk":
        torch.save({"head.weight": torch.zeros(3)}, path)
    elif kind == "narrower":  # a trunk of other widths than the study's
        _saved_model(path, seed=0, small_trunk_channels=(16, 32, 64, 128))
    return path


@pytest.mark.parametrize(
    "kind,message",
    [
        ("missing", "missing.pt: no such file"),
        ("corrupt", "corrupt.pt: not a readable model file"),
        ("no-trunk", "no-trunk.pt: holds no trunk weights"),
        ("narrower", "narrower.pt: its trunk does not fit the study's model: size mismatch"),
    ],
)
def test_a_bad_trunk_file_gets_one_line_and_exit_2(tmp_path, capsys, kind, message):
    with pytest.raises(SystemExit) as exit_info:
        ablations.main(["--trunk", str(_bad_trunk(tmp_path, kind)), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--trunk {tmp_path}/{message}" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "runs.json").exists()  # no work began


def test_runs_from_a_trunk_and_fresh_runs_never_share_a_folder(tmp_path, capsys):
    saved = _saved_model(tmp_path / "trained.pt", seed=7)
    fresh = [{"key": "k", "seed": 0, "steps": 800, "AP": 0.5}]
    from_trunk = [{**fresh[0], "trunk": {"file": "t.pt", "sha1": "0123456789ab"}}]
    for runs, argv, message in [
        (fresh, ["--trunk", str(saved)], "runs started from fresh weights"),
        (from_trunk, [], "runs started from the trunk of SHA-1 0123456789ab"),
        (from_trunk, ["--trunk", str(saved)], "runs started from the trunk of SHA-1 0123456789ab"),
    ]:
        (tmp_path / "runs.json").write_text(json.dumps(runs))
        with pytest.raises(SystemExit) as exit_info:
            ablations.main([*argv, "--out", str(tmp_path)])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
        assert json.loads((tmp_path / "runs.json").read_text()) == runs  # nothing lost


def test_measuring_dead_features_leaves_the_run_unchanged(tmp_path, monkeypatch):
    variant = ablations.smoke_variants()[HIGH]
    setting = BY_NAME[HIGH, "CE alpha=0.75"]
    measured = ablations.run_one(setting, variant, 0, 4, tmp_path, None)
    monkeypatch.setattr(ablations, "dead_features", lambda *a, **k: {"foreground": 0.0, "background": 0.0})
    unmeasured = ablations.run_one(setting, variant, 0, 4, tmp_path, None)
    assert [d[0] for d in measured["dead_features"]] == [1, 2, 3, 4]
    for field in ("loss_step0", "final_loss", "curve", "AP"):
        assert measured[field] == unmeasured[field], field
