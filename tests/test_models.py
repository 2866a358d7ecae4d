"""Networks, rectifier, CTC decoding and the shared training loop (resume, NaN guard, init)."""

import math

import numpy as np
import pytest
import torch

from platereader.geometry.quads import is_convex, quad_iou
from platereader.nets.networks import (ALPHABET, Localizer, PlateOCR, ctc_greedy_decode, encode_text, fold_batchnorm,
                                       load_model, save_model)
from platereader.nets.quantize import available as int8_available
from platereader.geometry.rectify import halvings, rectify
from platereader.training.loop import forward_dtype, train
from platereader.training.losses import ctc_loss, encode_targets, localize_loss
from platereader.errors import UserError

MARGIN = (0.15, 0.5)  # a localizer window's margin, as PrepareLocalizeParams.WINDOW_MARGIN


def test_shapes():
    loc = Localizer(width=8, input_size=64).eval()
    heatmaps, present = loc(torch.zeros(3, 1, 64, 64))
    assert heatmaps.shape == (3, 4, 16, 16) and present.shape == (3,)
    assert Localizer.corners(heatmaps, 64).shape == (3, 4, 2)
    ocr = PlateOCR(width=8, crop_height=32, crop_width=128).eval()
    assert ocr(torch.zeros(2, 1, 32, 128)).shape == (32, 2, len(ALPHABET) + 1)


def test_presence_map_scores_every_window_of_a_larger_image():
    torch.manual_seed(0)
    model = Localizer(width=4, input_size=64).eval()
    with torch.no_grad():
        image = torch.rand(1, 1, 160, 224) * 255
        window = image[:, :, 32:96, 48:112]  # the window of cell (2, 3)
        dense = model.presence_map(image, 64)
        assert dense.shape == (1, 10 - 3, 14 - 3)  # 1/16 cells, 4 x 4 per window
        # A window-sized input: the presence the localizer gives it.
        assert torch.allclose(model.presence_map(window, 64), model(window)[1].view(1, 1, 1), atol=1e-5)


def test_soft_argmax_finds_a_peak():
    heatmaps = torch.full((1, 4, 16, 16), -30.0)
    heatmaps[0, 0, 3, 5] = 30  # row 3, column 5 -> centre (5.5, 3.5) cells -> x 22, y 14 at stride 4
    corners = Localizer.corners(heatmaps, 64)
    assert torch.allclose(corners[0, 0], torch.tensor([22.0, 14.0]), atol=1e-3)


def test_rectify_unwarps_a_known_quad():
    # A 40 x 20 white rectangle with a black left half, rotated by 90 degrees: the corner order
    # decides the orientation, so the crop must come out upright with black on the left.
    scene = torch.zeros(1, 1, 100, 100)
    scene[..., 30:70, 40:60] = 255  # 20 wide, 40 tall
    scene[..., 30:50, 40:60] = 0    # the top half black; after unwarp with TL at bottom-left...
    # Plate's TL, TR, BR, BL: the plate runs upwards, its left side at the bottom.
    corners = torch.tensor([[[40.0, 70.0], [40.0, 30.0], [60.0, 30.0], [60.0, 70.0]]])
    crop = rectify(scene, corners, 20, 40)[0, 0]
    assert crop.shape == (20, 40)
    assert crop[:, :18].mean() > 250 and crop[:, 22:].mean() < 5  # bottom (white) is now the left


def test_rectify_identity_and_downscale():
    scene = torch.arange(64 * 256, dtype=torch.float32).view(1, 1, 64, 256) % 251
    corners = torch.tensor([[[0.0, 0.0], [256.0, 0.0], [256.0, 64.0], [0.0, 64.0]]])
    same = rectify(scene, corners, 64, 256)
    assert torch.allclose(same, scene, atol=1e-3)
    half = rectify(scene, corners, 32, 128)  # box-filtered by 2, then sampled at the cell centres
    assert torch.allclose(half, torch.nn.functional.avg_pool2d(scene, 2), atol=1e-3)


def test_rectify_samples_large_windows_from_coarser_copies_as_it_would_from_the_image():
    # A photo's window spanning 8x the crop: sampled from the image's 2x, 4x, 8x copies instead of
    # 64 samples per pixel, the crop is the same box-filtered picture; smaller crops are untouched.
    y, x = torch.meshgrid(torch.arange(720.0), torch.arange(1280.0), indexing="ij")
    photo = (127 + 100 * torch.sin(x / 37) * torch.cos(y / 23)).view(1, 1, 720, 1280)
    photo[..., ::2, :] += 20  # a one-pixel stripe pattern that only a box filter averages away
    coarser = halvings(photo, 3)
    assert [c.shape[-2:] for c in coarser] == [(360, 640), (180, 320), (90, 160)]
    quads = torch.tensor([[[100.0, 50.0], [868.0, 50.0], [868.0, 690.0], [100.0, 690.0]],  # 8x: the 8x copy
                          [[300.0, 200.0], [556.0, 220.0], [550.0, 420.0], [310.0, 400.0]],  # 2-3x: the 2x copy
                          [[600.0, 300.0], [680.0, 300.0], [680.0, 380.0], [600.0, 380.0]]])  # under 2x: the image
    plain, fast = rectify(photo, quads, 80, 96), rectify(photo, quads, 80, 96, coarser=coarser)
    assert (fast - plain)[:2].abs().mean() < 2.5 and (fast - plain)[:2].abs().max() < 5  # grey levels of 0-255
    assert not torch.equal(fast[0], plain[0]) and torch.equal(fast[2], plain[2])


def test_rectify_cuts_quads_from_a_stack_of_images_as_from_each_alone():
    # rows: quads of a batch's photos cut without copying any photo; each crop as it is alone.
    y, x = torch.meshgrid(torch.arange(360.0), torch.arange(640.0), indexing="ij")
    photos = torch.stack([127 + 100 * torch.sin(x / (17 + 9 * k)) * torch.cos(y / 23) for k in range(3)])[:, None]
    quads = torch.tensor([[[10.0, 20.0], [200.0, 30.0], [190.0, 90.0], [15.0, 80.0]],  # 2-3x: the 2x copies
                          [[-30.0, -10.0], [60.0, -10.0], [60.0, 40.0], [-30.0, 40.0]],  # past the edges
                          [[300.0, 100.0], [340.0, 100.0], [340.0, 120.0], [300.0, 120.0]]])
    rows = torch.tensor([2, 0, 2])
    coarser = halvings(photos, 2)
    together = rectify(photos, quads, 40, 80, (0.1, 0.3), coarser=coarser, rows=rows)
    for crop, quad, row in zip(together, quads, rows.tolist()):
        alone = rectify(photos[row:row + 1], quad[None], 40, 80, (0.1, 0.3), coarser=[h[row:row + 1] for h in coarser])
        assert torch.equal(crop, alone[0])
    assert not torch.equal(together[0], rectify(photos[:1], quads[:1], 40, 80, (0.1, 0.3))[0])  # not photo 0's


def test_ctc_greedy_decode_collapses_repeats_and_blanks():
    path = [0, encode_text("Z")[0], encode_text("Z")[0], 0, encode_text("H")[0], 0,
            encode_text("1")[0], 0, encode_text("1")[0], encode_text("1")[0]]
    logits = torch.full((len(path), 1, len(ALPHABET) + 1), -10.0)
    for t, k in enumerate(path):
        logits[t, 0, k] = 10.0
    (text, conf), = ctc_greedy_decode(logits)
    assert text == "ZH11"
    assert 0.99 < conf <= 1.0
    logits[4, 0, :] = 0.0  # one ambiguous step lowers the confidence
    assert ctc_greedy_decode(logits)[0][1] < 0.1


def test_ctc_greedy_decode_reads_each_sample_of_a_batch_alone():
    logits = torch.randn(32, 50, len(ALPHABET) + 1, generator=torch.Generator().manual_seed(0)) * 3
    logits[:, 7, 0] = 50.0  # an all-blank sample reads as empty text
    decoded = ctc_greedy_decode(logits)
    assert decoded[7][0] == ""
    for b, (text, conf) in enumerate(decoded):
        path = logits[:, b].argmax(-1).tolist()
        expected = "".join(ALPHABET[k - 1] for t, k in enumerate(path) if k and (t == 0 or k != path[t - 1]))
        assert text == expected
        assert conf == pytest.approx(ctc_greedy_decode(logits[:, b:b + 1])[0][1], rel=1e-5)


def test_is_convex_rejects_folded_and_runaway_quads():
    square = torch.tensor([[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 2.0]])
    folded = square[[0, 2, 1, 3]]  # a bow tie: what a window pass through a bad homography gives
    runaway = square.clone()
    runaway[3] = torch.tensor([float("inf"), 5.0])
    quads = torch.stack([square, square.flip(0), folded, runaway])
    assert is_convex(quads).tolist() == [True, True, False, False]


def test_quad_iou():
    a = np.array([[0, 0], [4, 0], [4, 2], [0, 2]], float)
    assert quad_iou(a, a) == pytest.approx(1.0)
    assert quad_iou(a, a + [2, 0]) == pytest.approx(4 / 12)
    assert quad_iou(a, a[::-1]) == pytest.approx(1.0)  # orientation does not matter


def test_save_and_load_model(tmp_path):
    model = PlateOCR(width=8)
    save_model(model, tmp_path / "m.pt", {"crop_margin": 0.1})
    loaded, extra = load_model(tmp_path / "m.pt")
    assert extra == {"crop_margin": 0.1} and loaded.config == model.config
    x = torch.rand(2, 1, 32, 128) * 255
    assert torch.equal(loaded(x), model.eval()(x))


class TinyParams:
    SEED = 7
    EPOCHS = 3
    BATCH_SIZE = 16
    LEARNING_RATE = 3e-3
    WEIGHT_DECAY = 1e-4
    WIDTH = 4
    INIT_MODEL = []
    PRECISION = ['auto']


class OneEpoch(TinyParams):
    EPOCHS = 1


def ocr_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    texts = np.array(["ZH" + "".join(rng.choice(list("0123456789"), 3)) for _ in range(n)])
    targets, lengths = encode_targets(texts)
    return {"images": rng.integers(0, 256, (n, 32, 128), dtype=np.uint8), "targets": targets, "lengths": lengths}


def run_train(tmp_path, p=TinyParams, loss_fn=ctc_loss, model_class=PlateOCR):
    return train(name="test", p=p, make_model=lambda: model_class(width=p.WIDTH), loss_fn=loss_fn, train=ocr_data(),
                 val=ocr_data(32, 1), run_dir=str(tmp_path / "run"), checkpoint_dir=str(tmp_path / "ckpt"),
                 model_path=str(tmp_path / "model" / "model.pt"), model_extra={})


def weights(path):
    return load_model(path)[0].state_dict()


def test_interrupted_training_resumes_to_the_same_model(tmp_path, capsys):
    straight = run_train(tmp_path / "a")
    reference = weights(tmp_path / "a" / "model" / "model.pt")
    # The int8 copy the reader runs, where this PyTorch has the kernels for it.
    assert ("int8" in load_model(tmp_path / "a" / "model" / "model.pt")[1]) == int8_available()

    calls = {"n": 0}

    def dies_in_epoch_2(model, images, labels):  # epoch 1 = 4 train + 2 val calls; 7 is in epoch 2
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt  # what a kill looks like to the loop: no checkpoint for epoch 2
        return ctc_loss(model, images, labels)

    with pytest.raises(KeyboardInterrupt):
        run_train(tmp_path / "b", loss_fn=dies_in_epoch_2)
    assert not (tmp_path / "b" / "model" / "model.pt").exists()
    assert torch.load(tmp_path / "b" / "ckpt" / "last.pt", weights_only=False)["epoch"] == 1
    resumed = run_train(tmp_path / "b")
    assert "resuming from the checkpoint after epoch 1 of 3" in capsys.readouterr().out
    assert resumed["final_val_loss"] == pytest.approx(straight["final_val_loss"], rel=1e-5)
    for key, value in weights(tmp_path / "b" / "model" / "model.pt").items():
        assert torch.allclose(value.float(), reference[key].float(), atol=1e-5), key
    # The DVCLive history of the resumed run holds all three epochs.
    rows = (tmp_path / "b" / "run" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert len(rows) == 1 + TinyParams.EPOCHS
    # Run again after the last epoch (as `dvc repro` does when only the stage's code changed): the
    # same model, and the speed of the runs that trained it, not of one that trained nothing.
    again = run_train(tmp_path / "b")
    assert "resuming from the checkpoint after epoch 3 of 3" in capsys.readouterr().out
    assert again["final_val_loss"] == resumed["final_val_loss"]
    assert again["train_images_per_s"] == resumed["train_images_per_s"] > 0


def test_precision_auto_is_bfloat16_only_on_cpus_with_amx(monkeypatch):
    for amx in (True, False):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda amx=amx: amx)
        assert forward_dtype("auto", torch.device("cpu")) == (torch.bfloat16 if amx else torch.float32)
        assert forward_dtype("float32", torch.device("cpu")) == torch.float32
        assert forward_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    assert forward_dtype("auto", torch.device("cuda")) == torch.float32


def test_bfloat16_training_learns_and_saves_a_float32_model(tmp_path):
    class InBFloat16(TinyParams):
        PRECISION = ['bfloat16']
        EPOCHS = 4

    summary = run_train(tmp_path, p=InBFloat16)
    assert summary["precision"] == "bfloat16" and math.isfinite(summary["final_val_loss"])
    rows = (tmp_path / "run" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()[1:]
    losses = [float(row.split("\t")[-1]) for row in rows]
    assert losses[-1] < losses[0]  # it learns
    assert all(v.dtype in (torch.float32, torch.int64) for v in weights(tmp_path / "model" / "model.pt").values())


def test_training_without_int8_kernels_saves_the_float_network_only(tmp_path, monkeypatch):
    monkeypatch.setattr("platereader.training.loop.int8_available", lambda: False)  # as on ARM
    run_train(tmp_path, p=OneEpoch)
    model, extra = load_model(tmp_path / "model" / "model.pt")
    assert extra == {} and isinstance(model, PlateOCR)


class EditedOCR(PlateOCR):
    """The OCR with its classifier bias removed: same params and config, as after an edit of networks.py."""

    def __init__(self, width: int):
        super().__init__(width)
        self.classify = torch.nn.Linear(8 * width, len(ALPHABET) + 1, bias=False)


def test_a_checkpoint_of_other_network_code_is_not_resumed(tmp_path, capsys):
    run_train(tmp_path, p=OneEpoch)
    summary = run_train(tmp_path, p=OneEpoch, model_class=EditedOCR)  # same params, same data
    assert "ignoring" in capsys.readouterr().out
    saved = torch.load(tmp_path / "model" / "model.pt", weights_only=True)["state_dict"]
    assert summary["epochs"] == 1 and "classify.bias" not in saved  # trained anew, as EditedOCR


def test_nan_loss_stops_with_remedies(tmp_path):
    def nan_loss(model, images, labels):
        return ctc_loss(model, images, labels) * float("nan")

    with pytest.raises(UserError, match="LEARNING_RATE.*BATCH_SIZE.*INIT_MODEL"):
        run_train(tmp_path, loss_fn=nan_loss)


def test_init_model_must_match(tmp_path):
    save_model(Localizer(width=4), tmp_path / "loc.pt")

    class FromLocalizer(TinyParams):
        INIT_MODEL = [str(tmp_path / "loc.pt")]

    with pytest.raises(UserError, match="INIT_MODEL.*Localizer"):
        run_train(tmp_path, p=FromLocalizer)


def test_localize_loss_prefers_the_true_corners():
    model = Localizer(width=4, input_size=32)
    corners = torch.tensor([[[4.0, 10.0], [28.0, 10.0], [28.0, 20.0], [4.0, 20.0]]])
    labels = {"corners": corners, "present": torch.tensor([True])}
    loss = localize_loss(model, torch.zeros(1, 32, 32, dtype=torch.uint8), labels, heatmap_sigma=1.0, heatmap_weight=0.5)
    assert torch.isfinite(loss) and loss > 0


def test_frames_map_input_pixels_to_the_scene_and_back():
    from platereader.geometry.frames import frame_to_scene, scene_to_frame, whole_scene_frames

    frames = torch.tensor([[[30.0, 40.0], [150.0, 50.0], [148.0, 85.0], [28.0, 78.0]]])
    points = torch.tensor([[[0.0, 0.0], [64.0, 64.0], [10.5, 40.25]]])
    assert torch.allclose(scene_to_frame(frames, frame_to_scene(frames, points, 64, MARGIN), 64, MARGIN), points, atol=1e-3)
    # A first-pass input shows the scene scaled by `scale` from the top-left corner.
    whole = whole_scene_frames(torch.tensor([0.25]), 64, MARGIN)
    assert torch.allclose(frame_to_scene(whole, points, 64, MARGIN), points / 0.25, atol=1e-3)


def test_first_pass_input_is_the_scene_shrunk_top_left_as_pillow_shrinks_it():
    from PIL import Image

    from platereader.geometry.frames import PAD_VALUE, fit_square

    # Two wide scenes of one size: shrunk by 96 / 300, pasted top-left, the rest padding.
    scenes = np.random.default_rng(0).integers(0, 256, (2, 150, 300), dtype=np.uint8)
    scenes[1, :, :150] = 255  # a sharp edge: a shrink without antialiasing would differ near it
    inputs, scale = fit_square(torch.from_numpy(scenes).unsqueeze(1).float(), 96)
    assert inputs.shape == (2, 96, 96) and inputs.dtype == torch.uint8 and scale == 96 / 300
    assert (inputs[:, 48:] == PAD_VALUE).all()
    for scene, got in zip(scenes, inputs):  # Pillow's antialiased shrink, to within one grey level
        expected = np.asarray(Image.fromarray(scene).resize((96, 48), Image.BILINEAR, reducing_gap=None))
        assert np.abs(got[:48].numpy().astype(int) - expected).max() <= 1


def test_second_pass_window_shows_the_quad_upright_with_its_margin():
    from platereader.geometry.frames import window_inputs

    # A dark 120 x 30 plate on white, rotated by 90 degrees (its top edge runs upwards on the left).
    scene = torch.full((1, 1, 200, 200), 255.0)
    scene[..., 40:160, 85:115] = 0
    frame = torch.tensor([[[85.0, 160.0], [85.0, 40.0], [115.0, 40.0], [115.0, 160.0]]])
    window = window_inputs(scene, frame, 64, MARGIN)[0].float()
    mx, my = MARGIN
    x0, x1 = round(64 * mx / (1 + 2 * mx)), round(64 * (1 + mx) / (1 + 2 * mx))
    y0, y1 = round(64 * my / (1 + 2 * my)), round(64 * (1 + my) / (1 + 2 * my))
    assert window[y0 + 1:y1 - 1, x0 + 1:x1 - 1].max() < 5  # the plate fills its part of the window
    assert window[:y0 - 1].min() > 250 and window[y1 + 1:].min() > 250  # margin above and below it


def test_folded_batchnorm_gives_the_same_outputs():
    torch.manual_seed(0)
    for model, shape in ((Localizer(width=8), (2, 1, 64, 64)), (PlateOCR(width=8), (2, 1, 32, 128))):
        model.train()
        for _ in range(3):  # non-trivial running statistics
            model(torch.rand(*shape) * 255)
        model.eval()
        x = torch.rand(*shape) * 255
        expected, folded = model(x), fold_batchnorm(model)(x)
        for a, b in zip(expected if isinstance(expected, tuple) else (expected,),
                        folded if isinstance(folded, tuple) else (folded,)):
            assert torch.allclose(a, b, atol=1e-3, rtol=1e-3)
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched


def test_int8_copy_is_close_to_the_float_network_and_survives_saving(tmp_path):
    from platereader.nets.quantize import calibrate, int8_copy

    if not int8_available():
        pytest.skip("this PyTorch build has no x86 int8 kernels")
    torch.manual_seed(0)
    for model, shape in ((Localizer(width=8, input_size=64), (1, 64, 64)), (PlateOCR(width=8), (1, 32, 128))):
        model.train()
        for _ in range(3):  # non-trivial BatchNorm statistics, folded by the conversion
            model(torch.rand(16, *shape) * 255)
        model.eval()
        inputs = torch.randint(0, 256, (96, *shape)).float()
        save_model(model, tmp_path / "m.pt", {"int8": calibrate(model, inputs[:64])})
        loaded, extra = load_model(tmp_path / "m.pt")
        int8 = int8_copy(loaded, extra["int8"])
        assert not any(type(m) in (torch.nn.Conv2d, torch.nn.GRU)  # all replaced, but the kept ones
                       for name, m in int8.named_modules() if name not in getattr(model, "float_modules", ()))
        x = inputs[64:]  # inputs the calibration did not see
        with torch.no_grad():
            expected, got = model(x), int8(x)
        if isinstance(model, Localizer):  # what the reader uses: corners and the present logit
            corners = Localizer.corners(expected[0], 64), Localizer.corners(got[0], 64)
            assert (corners[0] - corners[1]).abs().max() < 1.0  # pixels of a 64 px input
            expected, got = expected[1], got[1]
        assert (expected - got).abs().max() < 0.05 * expected.abs().max()
        assert torch.equal(int8(x)[0], int8_copy(model, extra["int8"])(x)[0])  # rebuilt the same
    assert int8_copy(model, None) is None  # files saved without an int8 state: the reader stays float


def test_int8_trunk_gives_the_photo_search_the_float_presence_map():
    from platereader.nets.quantize import calibrate, int8_copy, int8_trunk

    if not int8_available():
        pytest.skip("this PyTorch build has no x86 int8 kernels")
    torch.manual_seed(0)
    model = Localizer(width=8, input_size=64)
    model.train()
    for _ in range(3):
        model(torch.rand(16, 1, 64, 64) * 255)
    model.eval()
    trunk = int8_trunk(int8_copy(model, calibrate(model, torch.randint(0, 256, (64, 1, 64, 64)).float())))
    folded = fold_batchnorm(model)
    photo = torch.randint(0, 256, (2, 1, 180, 320)).float()  # bigger than the inputs calibrated on
    with torch.no_grad():
        expected, got = folded.presence_map(photo, 64), folded.presence_map(photo, 64, trunk=trunk)
    assert got.shape == expected.shape == (2, 9, 17)  # one window every 16 px
    assert (expected - got).abs().max() < 0.05 * expected.abs().max()
    assert int8_trunk(folded) is None and int8_trunk(None) is None  # float networks: the float trunk


def test_square_to_quad_maps_the_unit_square_onto_each_quad():
    from platereader.geometry.rectify import apply_homography, square_to_quad

    torch.manual_seed(0)
    quads = torch.tensor([[60.0, 100], [200, 95], [205, 140], [58, 150]]) + torch.randn(32, 4, 2) * 15
    unit = torch.tensor([[0.0, 0], [1, 0], [1, 1], [0, 1]]).expand(32, 4, 2)
    assert torch.allclose(apply_homography(square_to_quad(quads), unit), quads.double(), atol=1e-9)
    # All corners in one point (an untrained localizer): finite, everything mapped onto that point.
    point = torch.full((1, 4, 2), 50.0)
    assert torch.allclose(apply_homography(square_to_quad(point), torch.rand(1, 5, 2)), torch.full((1, 5, 2), 50.0).double())
