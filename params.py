"""Every parameter of the pipeline, defined once.

DVC reads this file (dvc.yaml lists the names each stage depends on) and `dvc exp run -S
"params.py:TrainOCRParams.EPOCHS=1"` rewrites it. The code imports it directly, and each stage
validates the values it uses before writing anything (src/utils/validate.py).
"""

# Global switches.
SEED = 42  # base seed; every stage derives its own from it and its own SEED offset
MULTIPROCESSING = True  # use all cores to generate data (results are identical either way)
SCENE_SIZE = 256  # side of the square synthetic scenes, in pixels


class GeneratorParams:
    """What the synthetic scenes look like (shared by every prepare stage)."""

    # Canton codes the generator may draw (all 26 by default).
    CANTONS = [
        "AG", "AI", "AR", "BE", "BL", "BS", "FR", "GE", "GL", "GR", "JU", "LU", "NE",
        "NW", "OW", "SG", "SH", "SO", "SZ", "TG", "TI", "UR", "VD", "VS", "ZG", "ZH",
    ]
    # Probability of a number with 1..6 digits (most real plates have 5-6 digits).
    DIGIT_WEIGHTS = [0.02, 0.05, 0.10, 0.18, 0.30, 0.35]
    BACK_STYLE_RATE = 0.5  # share of back plates (shield, canton, number, canton shield)
    NO_PLATE_RATE = 0.05  # share of scenes with no plate (labelled present=0)
    # Plate width as a share of the scene side, and the geometric transform ranges.
    PLATE_WIDTH_RANGE = [0.35, 0.95]
    ROTATION_DEG = 12.0  # in-plane rotation, +- degrees
    SHEAR_DEG = 10.0  # horizontal shear, +- degrees
    STRETCH = 0.2  # aspect ratio change, +- share
    PERSPECTIVE = 0.12  # corner displacement of the perspective warp, share of plate size
    # Augmentations, code -> weight (the ALPR seed's codes and default weights).
    AUGMENTATIONS = {
        "mot": 2, "rot": 3, "r3d": 1, "blr": 1, "shd": 1, "noi": 1,
        "cut": 1, "pad": 1, "tbc": 1, "brg": 1, "rsz": 1,
    }
    AUGMENTATIONS_PER_SCENE = [0, 3]  # how many weighted draws per scene (inclusive range)
    JPEG_RATE = 0.3  # share of scenes re-encoded as JPEG
    JPEG_QUALITY = [20, 90]


class PrepareLocalizeParams:
    SEED = 1
    MAX_IMAGES = 40000
    VAL_SPLIT = 0.1  # share of images held out for validation
    INPUT_SIZE = 96  # side of the localizer's input; 64 reads 2.5 points fewer plates, 1.6x faster (docs/results.md)


class PrepareOCRParams:
    SEED = 2
    # Fresh plates beat more epochs (the OCR overfits 36k plates in 4 epochs). 130 000 with 3x the
    # motion blur (AUGMENTATIONS below) read +0.35 points on 18 000 scenes, for ~2 minutes more.
    MAX_IMAGES = 130000
    VAL_SPLIT = 0.05
    CROP_HEIGHT = 32  # rectified plate crop the OCR reads
    CROP_WIDTH = 128
    CROP_MARGIN = [0.06, 0.2]  # border around the quad: shares of the plate's width, height
    # Random error of the quad the crop is cut from, [share of width, share of height]: about the
    # localizer's 90th percentile, so the OCR reads the slightly off crops of the stack.
    CORNER_JITTER = [0.06, 0.15]
    # Augmentation weights that replace GeneratorParams.AUGMENTATIONS for the OCR's scenes only ({}
    # keeps them all; the stack set keeps the generator's, so what the reader is scored on does not
    # change). Motion blur costs the most plates (scripts/degradations.py, docs/results.md).
    AUGMENTATIONS = {"mot": 6}


class PrepareStackParams:
    # A separate scene set from its own seed, never used for training.
    SEED = 3
    MAX_IMAGES = 2000


class TrainLocalizeParams:
    SEED = 4
    EPOCHS = 8  # 6 read 0.24 points fewer plates on 18 000 scenes for 2.3 minutes less (docs/results.md)
    BATCH_SIZE = 128
    LEARNING_RATE = 3e-3
    WEIGHT_DECAY = 1e-4
    WIDTH = 16  # channels of the first block; the others are multiples of it
    INIT_MODEL = ""  # path of a trained model to start from (incremental learning), "" = scratch


class TrainOCRParams:
    SEED = 5
    EPOCHS = 3
    BATCH_SIZE = 128
    LEARNING_RATE = 3e-3
    WEIGHT_DECAY = 1e-4
    WIDTH = 32
    INIT_MODEL = ""


class EvaluateParams:
    NUM_PLOT_IMAGES = 8  # prediction overlays written per evaluation
    BATCH_SIZE = 64  # scenes per read; with 96 px inputs 64 beats 256 on 2 cores (cache), 1.4x
