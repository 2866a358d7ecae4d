"""Every parameter of the pipeline, defined once.

DVC reads this file (dvc.yaml lists the names each stage depends on) and `dvc exp run -S
"params.py:TrainOCRParams.EPOCHS=1"` rewrites it. Only the stage modules (platereader.stages)
import it; they validate the values they use before writing anything and pass them to the
library. Why each default was chosen, with the figures: docs/history.md.
"""

# Global switches.
SEED = 42  # base seed; every stage derives its own from it and its own SEED offset
MULTIPROCESSING = True  # use all cores to generate data (results are identical either way)
SCENE_SIZE = 256  # side of the square synthetic scenes, in pixels


class GeneratorParams:
    """What the synthetic scenes look like (shared by every prepare stage)."""

    # Plate formats drawn, name -> weight (platereader.formats: swiss, brazil, us, eu; docs/generator.md).
    # A table is a class, one entry per line, so that `dvc exp run -S` can set each (it cannot
    # rewrite a dict in params.py, nor a string: paths are one-element lists).
    class FORMATS:
        swiss = 1

    # Share of a format's plates drawn in its two-row layouts (Brazilian motorcycle plates, square
    # European plates; Swiss and US plates have none here): the OCR learns to read each row.
    TWO_ROW_RATE = 0.15
    CANTONS = []  # canton codes the generator draws; [] = all 26 (platereader.formats)
    # Probability of a number with 1..6 digits (most real plates have 5-6 digits).
    DIGIT_WEIGHTS = [0.02, 0.05, 0.1, 0.18, 0.3, 0.35]
    BACK_STYLE_RATE = 0.5  # share of back plates (shield, canton, number, canton shield)
    NO_PLATE_RATE = 0.05  # share of scenes with no plate (labelled present=0)
    # Plate width as a share of the scene side, and the geometric transform ranges.
    PLATE_WIDTH_RANGE = [0.35, 0.95]
    ROTATION_DEG = 12.0  # in-plane rotation, +- degrees
    SHEAR_DEG = 10.0  # horizontal shear, +- degrees
    STRETCH = 0.2  # aspect ratio change, +- share
    PERSPECTIVE = 0.12  # corner displacement of the perspective warp, share of plate size
    # Augmentations, code -> weight (the ALPR seed's codes and default weights).
    class AUGMENTATIONS:
        mot = 2
        rot = 3
        r3d = 1
        blr = 1
        shd = 1
        noi = 1
        cut = 1
        pad = 1
        tbc = 1
        brg = 1
        rsz = 1

    AUGMENTATIONS_PER_SCENE = [0, 3]  # how many weighted draws per scene (inclusive range)
    JPEG_RATE = 0.3  # share of scenes re-encoded as JPEG
    JPEG_QUALITY = [20, 90]


class PrepareLocalizeParams:
    SEED = 1
    MAX_IMAGES = 40000
    VAL_SPLIT = 0.1  # share of images held out for validation
    INPUT_SIZE = 96  # side of the localizer's input
    # The window the later passes see around a quad: margin as shares of its width and height
    # (stored in the model file, so the reader cuts the windows it was trained on).
    WINDOW_MARGIN = [0.15, 0.5]
    # How far a training window's quad is from the true one, about as far as the first pass errs
    # (up to its 90th percentile): the whole quad and each corner, shares of width and height.
    WINDOW_SHIFT = [0.08, 0.4]
    WINDOW_SCALE = 0.15  # its size, +- share
    WINDOW_CORNER_NOISE = [0.04, 0.2]
    # Plate format weights that replace GeneratorParams.FORMATS for the localizer's scenes only,
    # merged like PrepareOCRParams.FORMATS (no entry keeps the generator's): the localizer finds plates
    # of every format the reader may accept, and fits their quads better (docs/history.md).
    class FORMATS:
        swiss = 3
        brazil = 1
        us = 1
        eu = 1


class PrepareOCRParams:
    SEED = 2
    MAX_IMAGES = 200000  # fresh plates beat more epochs: the OCR overfits a small set
    VAL_SPLIT = 0.05
    # Rectified plate crop the OCR reads. A US plate prints its characters under half its height:
    # at 32 rows they were 10 px tall, too few to tell a 2 from a Z.
    CROP_HEIGHT = 48
    CROP_WIDTH = 128
    CROP_MARGIN = [0.06, 0.2]  # border around the quad: shares of the plate's width, height
    # Random error of the quad the crop is cut from, [share of width, share of height]: about the
    # localizer's 90th percentile, so the OCR reads the slightly off crops of the stack.
    CORNER_JITTER = [0.06, 0.15]
    # Augmentation weights that replace GeneratorParams.AUGMENTATIONS for the OCR's scenes only
    # (no entry keeps them all; the stack set keeps the generator's). Motion blur costs the most Swiss
    # plates; lost resolution is how most plates in photos look (few pixels wide, upscaled).
    class AUGMENTATIONS:
        mot = 6
        rsz = 4

    # Plate format weights that replace GeneratorParams.FORMATS for the OCR's scenes only, merged
    # like AUGMENTATIONS (no entry keeps the generator's; a weight of 0 leaves a format out). Every format
    # the reader may accept: it reads foreign plates, and Swiss ones as well as when trained on them only.
    class FORMATS:
        swiss = 3
        brazil = 1
        us = 1
        eu = 1


class PrepareStackParams:
    # A separate scene set from its own seed, never used for training.
    SEED = 3
    MAX_IMAGES = 2000


class TrainLocalizeParams:
    SEED = 4
    EPOCHS = 8
    BATCH_SIZE = 128
    LEARNING_RATE = 0.003
    WEIGHT_DECAY = 0.0001
    WIDTH = 16  # channels of the first block; the others are multiples of it
    INIT_MODEL = []  # [path] of a trained model to start from (incremental learning), [] = scratch
    # What the forward pass computes in: ['float32'], ['bfloat16'], or ['auto'] (bfloat16 on CPUs with
    # AMX: 1.3x faster training there, but its models read real photos worse; docs/history.md).
    PRECISION = ['float32']
    HEATMAP_SIGMA = 1.0  # width of the target blob on the corner heatmaps, in heatmap cells
    HEATMAP_WEIGHT = 0.5  # weight of the heatmap cross-entropy next to the corner error


class TrainOCRParams:
    SEED = 5
    EPOCHS = 3
    BATCH_SIZE = 128
    LEARNING_RATE = 0.003
    WEIGHT_DECAY = 0.0001
    WIDTH = 32
    INIT_MODEL = []
    PRECISION = ['float32']


class ReaderParams:
    """How the PlateReader reads (evaluate_stack, and the MLEM package, which stores them)."""

    FORMATS = ['swiss']  # plate formats the reader reports (platereader.formats); others are no plate
    INT8 = True  # run the int8 copies saved with the models (False: the float networks)
    PRESENT_THRESHOLD = 0.5  # plate-present probability above which the localizer's quad is read
    WINDOW_PASSES = 2  # localizer passes on the window of the last quad, after the whole scene
    # A reading with no accepted format, or text confidence under REREAD_BELOW, is read again from
    # the quad shifted by these (dx, dy), shares of the plate's width and height, and voted; at 1.0
    # every reading is: real photos read better, for ~10 % more time per photo and ~30 % per small
    # scene, where 0.5 reads as well (docs/history.md).
    REREAD_BELOW = 1.0
    REREAD_SHIFTS = [[-0.03, 0.0], [0.03, 0.0], [0.0, -0.08], [0.0, 0.08]]
    # Where the windows find no plate: a TILE_GRID x TILE_GRID grid of squares of TILE_SIDE of the
    # scene's longer side; a plate found only there needs more presence and confidence.
    TILE_GRID = 3
    TILE_SIDE = 0.6
    TILE_PRESENT_THRESHOLD = 0.9
    TILE_MIN_CONFIDENCE = 0.3  # also every candidate of a photo (PHOTO_MIN_SIDE below)
    MIN_CONFIDENCE = 0.1  # presence x text confidence under which no plate is reported
    # Plates reported per image at most; above 1 the tiles are searched on every image for more
    # plates (slower), at 1 only where the whole-scene pass finds none.
    MAX_PLATES = 1
    # Photos (longer side >= PHOTO_MIN_SIDE pixels) are also searched for plates too small for the
    # whole-image pass: for each window side (shares of the longer side) the localizer's presence
    # of every such window, in one pass over the shrunk photo; the PHOTO_CANDIDATES most likely
    # windows per side are read; where the whole-image pass finds no plate, a photo is left to
    # this search instead of the tiles above ([] = no search; docs/real-data.md).
    PHOTO_MIN_SIDE = 512
    PHOTO_TILE_SIDES = [0.7, 0.5, 0.3, 0.18, 0.11]
    PHOTO_CANDIDATES = 3
    # Where the OCR's likeliest text fits no accepted format, or a later one in FORMATS than a text
    # almost as likely (O read for 0, I for 1 where the format wants a digit), the text of the
    # earliest format at most FORMAT_MARGIN (natural log) less likely is read (0 = likeliest only).
    # e^5 ~ 150: about how many more texts of a length the US format allows than the Brazilian one.
    FORMAT_MARGIN = 5.0


class EvaluateParams:
    NUM_PLOT_IMAGES = 8  # prediction overlays written per evaluation
    BATCH_SIZE = 64  # scenes per read


class RealParams:
    """Labelled photographs, folders under data/real (docs/real-data.md): the ones evaluate_real
    scores the reader on, and the ones mixed into training. A photo may not be in both (checked by
    its content, not its name)."""

    EVAL_DATASETS = []  # scored by evaluate_real, each on its own; [] = none (metrics {})
    TRAIN_DATASETS = []  # mixed into train_localize and train_ocr; [] = synthetic scenes only
    TRAIN_SHARE = 0.25  # share of the training items (so of each batch, on average) from those photos
    SEED = 6  # prepare_real's seed offset: the windows and crops it jitters around the labelled plates
    COPIES = 32  # per labelled plate: windows for the localizer and crops for the OCR (and whole photos)
