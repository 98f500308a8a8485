"""Mutants reviewed and judged equivalent: no test can tell them from the original code.

Each entry names the module, the original source line (stripped), the column where the mutated
code starts in the unstripped line (as the benchmark prints it), the mutation and the reason.
Keep this list short and reviewed: a mutant belongs here only when no input a user could give
makes the mutated code behave differently. Anything else is a missing test.
"""

from __future__ import annotations

_JOBS = "studio/engine/jobs.py"
_TILING = "studio/core/tiling.py"
_EXIF = "studio/core/exif.py"
_TIFF = "studio/core/imageio/tiff.py"
_WRITING = "studio/core/imageio/writing.py"
_READING = "studio/core/imageio/reading.py"
_IS_TORCHSCRIPT = 'return any(name.split("/", 2)[1:2] == ["code"] for name in archive.namelist())'
_ALLOW_LIST = (
    "every zip checkpoint then goes to the allow-list reader, which reads torch.save "
    "archives too and itself says whether it read a TorchScript one; both refuse code"
)
_PREFIX_BYTES = "while len(os.fsencode(prefix)) > 200:"
_TEMPORARY_NAME = (
    "only the temporary file's name changes, by a character: it still fits the file "
    "system's 255 bytes (at most 216); it is made with O_EXCL, so it never replaces a file of "
    "the user's; the batch's clean-up cuts names by the same function, so it still finds it; "
    "nothing else reads it (notices name the file itself, not the temporary: "
    "test_a_notice_names_a_long_file_whole_not_its_temporary_s_shorter_name)"
)
_SAME_PREFIX = (
    "the function returns the same: every character takes at least one byte, so the longest "
    "start of a name within 200 bytes has at most 200 characters, and the loop cuts name[:201] "
    "down to it too"
)
_MASK_TOP = "top = 2.0**image.meta.bit_depth - 1"
_NEAR = "near = values[np.clip(ys + dy, 0, height - 1), np.clip(xs + dx, 0, width - 1), cs]"
_SYMMETRIC = (
    "the 8 neighbour offsets are symmetric (-1, 0, 1), so subtracting them visits the same "
    "neighbours, only summed in another order (in float64, then rounded to float32)"
)
_SAME_MASKS = (
    ": still between 0.5 and 1.5, so rounded to 1, and level 2 still over 1.5; the same masks "
    "are told and read as black and white"
)
_EXECUTOR = "studio/engine/neural/executor.py"
_INFERENCE = "studio/engine/neural/inference.py"
_SET_BY_EXECUTOR = (
    "every WindowRun the studio makes (executor._window_run) sets this field, so its default is "
    "never read"
)
_WHOLE_WINDOW = "if h <= side and w <= side:"
_GREY_OR_EXPAND = (
    "return y.mean(1, keepdim=True) if channels == 1 else y.expand(-1, channels, -1, -1)"
)
_NEVER_EXPANDED = (
    "the expand is never reached: photos have 1 or 3 channels, a 1-channel model on a colour "
    "photo runs its channels as a batch (returned before), and a 2- or 4-channel one fails "
    "earlier, expanding the 3 input channels"
)
_CROP_OF_ALL = (
    "a window exactly the probe's side is then cropped from (0, 0) to its full size: the same "
    "values"
)
_STREAM_WHOLE = "sink(0, infer(run, pixels, (0, 0)))"
_NO_EXTRAS = (
    "the window's origin only places spatial extras, and a streamed run has none (run_model_into "
    "takes no Extras)"
)
_DEPTH_LOSS = "if depth < source and depth < 32:"
_REDUNDANT = "redundant: depths are 8, 16 or 32, so depth < source already means depth < 32"
_ICC_SPACE = 'return icc[16:20] if len(icc) >= 20 else b""'
_NO_SHORT_ICC = (
    "differs only for a 20-byte profile, and no valid one is shorter than its 128-byte header"
)
_INPAINT = "studio/engine/ops/inpaint.py"
_DEBLUR = "studio/engine/ops/deblur.py"
_UPSCALE = "studio/engine/ops/upscale.py"
_CONTEXT_MARGIN = "margin = max(reach, int((high - low) * CONTEXT_FACTOR))"
_UNDAMPED = "strength = matched_strength(image.pixels, kernel, sigma, device) if damped else 1.0"
_TIMES_ONE = "the factor is 1.0, and x / 1.0 is x * 1.0 exactly"
_UNUSED_RANGE = (
    "the range of an integer photo, which run_detail never uses: only a float photo's "
    "pixels are mapped by it and its result mapped back"
)
_DENOISE = "studio/engine/ops/denoise.py"
_FLAT_SPAN = (
    "the span of a flat photo only: its pixels all map to exactly 0 with any span, the filter "
    "returns exactly 0 for an all-zero picture (measured: OpenCV's NLM and each upscale step), "
    "and 0 times any span plus the level is the level"
)
EQUIVALENT: dict[tuple[str, str, int, str], str] = {
    (_JOBS, "@dataclass(frozen=True)", 18, "constant: True -> False"): (
        "frozen only forbids assigning to a request's fields; nothing does, and mypy (run by "
        "tests/test_code_quality.py) rejects any code that would"
    ),
    (
        _JOBS,
        "def _all_finite(pixels: np.ndarray, rows: int = 256) -> bool:",
        48,
        "constant: 256 -> 257",
    ): ("the band height only sets how many rows are checked at once; every row is still checked"),
    (_JOBS, "rows = max(1, 2**18 // original.width)", 15, "constant: 1 -> 2"): (
        "the floor of the blend's band height: it applies only to photos wider than 2**17 px, "
        "and a band of two rows blends the same pixels as one"
    ),
    (
        "studio/engine/tiling.py",
        "_NORMALISE_ROWS = 256  # rows of the tiles' weight sum made at a time when dividing by it",
        18,
        "constant: 256 -> 257",
    ): (
        "the band height only sets how many finished rows are divided by their weights at once; "
        "every row is still divided by its own"
    ),
    ("studio/engine/tiling.py", "band_top = 0", 15, "constant: 0 -> 1"): (
        "never read: the first tile finds no band yet, so it sets band_top (the `or` does not "
        "look at it, and _new_band reads it only beside a previous band)"
    ),
    (
        "studio/engine/tiling.py",
        "band[: big.y1 - big.y0, big.x0 : big.x1] += weighted",
        15,
        "binop: Sub -> Add",
    ): (
        "the band is exactly one tile tall (a row's tiles share their height), so a slice end "
        "past it is clipped to the same rows"
    ),
    (_TILING, "if length <= tile:", 7, "compare: LtE -> Lt"): (
        "a length equal to the tile then takes the general path, which gives the same one "
        "window (0, length)"
    ),
    (_TILING, "if overlap <= 0:", 7, "compare: LtE -> Lt"): (
        "with no overlap the general path gives the same all-ones ramp (an empty edge)"
    ),
    (_TILING, "@dataclass(frozen=True)", 18, "constant: True -> False"): (
        "frozen forbids assigning to a tile's corners (nothing does, and mypy, run by "
        "tests/test_code_quality.py, rejects code that would) and makes tiles hashable: nothing "
        "hashes one (tiles are kept in lists; the neural blend looks ramps up by a tile's first "
        "row or column, plain integers)"
    ),
    (
        _EXIF,
        "return value if isinstance(value, int) and 1 <= value <= 8 else 1",
        47,
        "constant: 1 -> 2",
    ): "orientation 1, the only value the lower bound then excludes, is what the else gives",
    (
        _TIFF,
        "keep = channels + 1 if samples.shape[2] > channels else channels",
        22,
        "constant: 1 -> 2",
    ): (
        "a second extra sample is then kept too, but the reader takes the colour channels and "
        "the next one as alpha and drops the rest (tests/core/test_imageio.py checks it)"
    ),
    (_TIFF, "samples = samples.astype(np.uint8) * np.uint8(255)", 54, "constant: 255 -> 256"): (
        "np.uint8(256) raises, and the reader then falls back to Pillow, which decodes a "
        "bilevel TIFF to the same 0 and 255 samples"
    ),
    (
        _TIFF,
        "premultiplied = keep > channels and bool(extras) and extras[0] == 1",
        20,
        "compare: Gt -> GtE",
    ): (
        "keep equals channels only when no extra sample is kept: there is no alpha, so "
        "premultiplication has nothing to act on"
    ),
    (
        _TIFF,
        "indices = np.clip(samples[..., 0], 0, colormap.shape[1] - 1)",
        42,
        "binop: Sub -> Add",
    ): ("a colour map has 2**bits entries, so no index of the file's own depth reaches past it"),
    (
        "studio/engine/neural/safeload.py",
        'if "weights_only" in str(err) or "Unsupported global" in str(err):',
        41,
        "compare: In -> NotIn",
    ): (
        "torch's weights-only unpickler (2.x) words every failure with 'weights_only', so the "
        "first test always decides and the second is never reached"
    ),
    (
        "studio/engine/neural/safeload.py",
        "shutil.copyfileobj(source, target, 1 << 20)",
        51,
        "constant: 1 -> 2",
    ): "the copy's buffer size: the same bytes are copied",
    (
        _TIFF,
        "samples = np.concatenate([_lab_to_rgb(samples, kind), _as_uint16(samples[..., 3:4])], 2)",
        88,
        "constant: 4 -> 5",
    ): (
        "a second extra sample then follows the alpha, and the reader keeps the colour "
        "channels and the next one as alpha only"
    ),
    (_TIFF, "if colormap.ndim != 2 or colormap.shape[0] != 3:", 7, "boolop: Or -> And"): (
        "tifffile always gives a (3, 2**bits) colour map, so neither test is ever true"
    ),
    (
        _TIFF,
        'extratags += [(_POINTER_STAND_INS[tag], "I", 1, 0, True) for tag in pointers]',
        52,
        "constant: 0 -> 1",
    ): "the stand-in pointer's value is overwritten with the sub-IFD's offset once it is written",
    ("studio/engine/neural/safeload.py", _IS_TORCHSCRIPT, 8, "return-input: return path"): (
        _ALLOW_LIST
    ),
    ("studio/engine/neural/safeload.py", _IS_TORCHSCRIPT, 19, "compare: Eq -> NotEq"): (
        _ALLOW_LIST
    ),
    (_WRITING, _DEPTH_LOSS, 26, "compare: Lt -> LtE"): _REDUNDANT,
    (_WRITING, _DEPTH_LOSS, 34, "constant: 32 -> 33"): _REDUNDANT,
    (_WRITING, _ICC_SPACE, 25, "compare: GtE -> Gt"): _NO_SHORT_ICC,
    (_WRITING, _ICC_SPACE, 37, "constant: 20 -> 21"): _NO_SHORT_ICC,
    (_READING, "return samples.astype(np.float32)", 8, "return-input: return samples"): (
        "every decoder hands over float samples as writable float32 (float TIFFs, EXR, Radiance "
        "HDR, JPEG XL and Pillow's F and I modes are converted there), so the copy holds the "
        "same values"
    ),
    (_TIFF, "chroma = samples[..., 1:3]", 28, "constant: 3 -> 4"): (
        "the slice then also takes an alpha sample after b*, but only a* and b* (its first two "
        "channels) are used"
    ),
    (
        _TIFF,
        'extrasamples=("unassalpha",) if channels in (2, 4) else None,',
        53,
        "constant: 2 -> 3",
    ): (
        "tifffile ignores an extra-sample kind for 3 RGB samples and marks a fourth as "
        "unassociated alpha by default: the files are byte for byte the same"
    ),
    (_WRITING, "prefix = name[:200]", 19, "constant: 200 -> 201"): _SAME_PREFIX,
    (_WRITING, _PREFIX_BYTES, 37, "constant: 200 -> 201"): _TEMPORARY_NAME,
    (_WRITING, _PREFIX_BYTES, 10, "compare: Gt -> GtE"): _TEMPORARY_NAME,
    (_WRITING, "prefix = prefix[:-1]", 26, "constant: 1 -> 2"): _TEMPORARY_NAME,
    (
        _WRITING,
        'f".{temporary_prefix(target.name)}.{secrets.token_hex(4)}.part"',
        66,
        "constant: 4 -> 5",
    ): (
        "the temporary's random part is two hex digits longer: its name still fits 255 bytes "
        "(at most 218), and the batch's clean-up takes whatever follows the last dot"
    ),
    (_READING, _NEAR, 34, "binop: Add -> Sub"): _SYMMETRIC,
    (_READING, _NEAR, 67, "binop: Add -> Sub"): _SYMMETRIC,
    (_READING, _MASK_TOP, 10, "binop: Sub -> Add"): (
        "a mask's level 1 then reads 1.008 (8-bit) or 1.00003 (16-bit) instead of 1" + _SAME_MASKS
    ),
    (_READING, _MASK_TOP, 38, "constant: 1 -> 2"): (
        "a mask's level 1 then reads 0.992 (8-bit) or 0.99998 (16-bit) instead of 1" + _SAME_MASKS
    ),
    (
        _EXECUTOR,
        "budget = max(share * free_bytes(device) - model.parameter_bytes, 0)",
        69,
        "constant: 0 -> 1",
    ): (
        "a budget of 1 byte instead of 0 fits no pixel either (every model needs at least 8 "
        "bytes a pixel), so the tile is the same smallest one"
    ),
    (
        _EXECUTOR,
        'int(getattr(m, "out_channels", 0) or getattr(m, "out_features", 0))',
        72,
        "constant: 0 -> 1",
    ): (
        "read only for a layer without output channels: every Linear layer has out_features, "
        "and a network whose every layer outputs nothing makes no image to tile"
    ),
    (
        _EXECUTOR,
        "device = next(model.module.parameters(), torch.empty(0)).device",
        57,
        "constant: 0 -> 1",
    ): "only the default's device is read, and torch.empty(1) is on the CPU like torch.empty(0)",
    (_EXECUTOR, "unloaded = True", 19, "constant: True -> False"): (
        "a second unload finds no other model (nothing enters the cache while the run retries), "
        "so it drops and logs nothing"
    ),
    (_EXECUTOR, _STREAM_WHOLE, 36, "constant: 0 -> 1"): _NO_EXTRAS,
    (_EXECUTOR, _STREAM_WHOLE, 39, "constant: 0 -> 1"): _NO_EXTRAS,
    (
        _INFERENCE,
        "measure_agreement: bool = False",
        30,
        "constant: False -> True",
    ): _SET_BY_EXECUTOR,
    (_INFERENCE, "allow_tf32: bool = False", 23, "constant: False -> True"): _SET_BY_EXECUTOR,
    (_INFERENCE, "batch_channels: bool = False", 27, "constant: False -> True"): _SET_BY_EXECUTOR,
    (_INFERENCE, _WHOLE_WINDOW, 7, "compare: LtE -> Lt"): _CROP_OF_ALL,
    (_INFERENCE, _WHOLE_WINDOW, 21, "compare: LtE -> Lt"): _CROP_OF_ALL,
    (_INFERENCE, _GREY_OR_EXPAND, 71, "constant: 1 -> 2"): _NEVER_EXPANDED,
    (_INFERENCE, _GREY_OR_EXPAND, 85, "constant: 1 -> 2"): _NEVER_EXPANDED,
    (_INFERENCE, _GREY_OR_EXPAND, 89, "constant: 1 -> 2"): _NEVER_EXPANDED,
    (_INFERENCE, "return None", 12, "return-input: return array"): (
        "it returns `array` where `array is None`: the same None"
    ),
}


# colorize, hdr and style run functions (studio/engine/ops/{colorize,style}.py)
_COLORIZE = "studio/engine/ops/colorize.py"
_STYLE = "studio/engine/ops/style.py"
_BANDS_ONLY = (
    "the band height only sets how many rows are worked on at once; every row gets the same "
    "arithmetic"
)
_ANY_NEGATIVE = "NumPy's reshape infers any negative size, so -2 means what -1 does"
EQUIVALENT |= {
    (
        _COLORIZE,
        "limit = np.where(np.abs(offsets) > 1e-12, room / np.abs(offsets), np.inf)",
        29,
        "compare: Gt -> GtE",
    ): (
        "differs only for an offset of exactly float32(1e-12) on a pure black or white pixel, "
        "and then by under 1e-11, below any file's precision (float photos are not clipped)"
    ),
    (
        _COLORIZE,
        "room = np.where(offsets > 0, 1.0 - y[..., None], y[..., None])",
        24,
        "compare: Gt -> GtE",
    ): (
        "the room is chosen differently only for an offset of exactly 0, and the next line "
        "gives such an offset no limit (inf) whatever its room"
    ),
    (
        "studio/engine/ops/hdr.py",
        "[fusion.Bracket(image.pixels, shift) for image, shift in "
        "zip(images, shifts, strict=True)],",
        92,
        "constant: True -> False",
    ): (
        "the shifts are made one per image (`_shifts` returns a list of len(images) either "
        "way), so the lengths are always equal and strict never has anything to refuse"
    ),
    (_COLORIZE, "start = guess.reshape(-1, 2)[free].astype(np.float64)", 31, "constant: 1 -> 2"): (
        _ANY_NEGATIVE
    ),
    (_COLORIZE, "values = hint_chroma.reshape(-1, 2).astype(np.float64)", 34, "constant: 1 -> 2"): (
        _ANY_NEGATIVE
    ),
    (_COLORIZE, "size = pixels.shape[:2]", 25, "constant: 2 -> 3"): (
        "only size[0] and size[1], the photo's height and width, are read"
    ),
    (_COLORIZE, "band = max(1, _BAND_PIXELS // width)", 19, "constant: 1 -> 2"): _BANDS_ONLY,
    (_COLORIZE, "band = max(1, _BAND_PIXELS // image.width)", 15, "constant: 1 -> 2"): (
        _BANDS_ONLY
    ),
    (
        _STYLE,
        "_BAND_PIXELS = 2**18  # pixels a band-by-band step works on at a time",
        18,
        "constant: 18 -> 19",
    ): _BANDS_ONLY,
    (_STYLE, "rows = max(1, _BAND_PIXELS // pixels.shape[1])", 15, "constant: 1 -> 2"): (
        _BANDS_ONLY
    ),
    (_STYLE, "rows = max(1, _BAND_PIXELS // pixels.shape[1])", 18, "binop: FloorDiv -> Mult"): (
        "the range check then takes the whole photo as one band; min and max allocate "
        "nothing, so the answer and the memory are the same"
    ),
    (_STYLE, "rows = max(1, _BAND_PIXELS // pixels.shape[1])", 47, "constant: 1 -> 2"): (
        _BANDS_ONLY
    ),
    (_STYLE, "rows = max(1, _BAND_PIXELS // width)", 19, "constant: 1 -> 2"): _BANDS_ONLY,
    (_STYLE, "if detail > 0:", 7, "compare: Gt -> GtE"): (
        "at detail 0 the added detail is 0 times the photo's, so the painting is unchanged"
    ),
    (_INPAINT, _CONTEXT_MARGIN, 32, "binop: Mult -> Div"): _TIMES_ONE,
    (
        _INPAINT,
        "scale = (high - low) or 1.0  # a flat crop: every level is 0, the fill is `low`",
        32,
        "constant: 1.0 -> 1.5",
    ): (
        "only a flat crop (every pixel the same) takes it: its pixels are all level 0 whatever "
        "the scale, so OpenCV fills 0 and the fill is `low` either way"
    ),
    (_DEBLUR, "smoothing = params.smoothing * BLIND_SMOOTHING", 16, "binop: Mult -> Div"): (
        _TIMES_ONE
    ),
    (
        _DEBLUR,
        "return max(estimate_sigma(image.pixels), NOISE_FLOOR * max(white, 1e-6))",
        70,
        "constant: 1e-06 -> 1.5e-06",
    ): (
        "the floor changes only for a float photo whose white is under 1.5e-6, where it is "
        "at most 1.5e-8 (3e-7 times the largest smoothing); every use of the noise level "
        "raises it to at least 1e-3 first (the solvers' MIN_SIGMA, the spectral likelihood's "
        "max(sigma, 1e-3))"
    ),
    (_DEBLUR, _UNDAMPED, 84, "constant: 1.0 -> 1.5"): (
        "the strength is only compared with 1 (a kernel is weakened below it): 1.5 leaves the "
        "kernel whole, as 1 does"
    ),
    (_UPSCALE, "return 0.0, 1.0", 15, "constant: 0.0 -> 1"): _UNUSED_RANGE,
    (_UPSCALE, "return 0.0, 1.0", 20, "constant: 1.0 -> 1.5"): _UNUSED_RANGE,
    (_UPSCALE, "return low, high - low if high > low else 1.0", 46, "constant: 1.0 -> 1.5"): (
        _FLAT_SPAN
    ),
    (_DENOISE, "scale = high - low if high > low else 1.0", 46, "constant: 1.0 -> 1.5"): (
        _FLAT_SPAN
    ),
    (
        _DENOISE,
        "np.ascontiguousarray(planes), None, h * NLM_H, NLM_TEMPLATE, NLM_SEARCH",
        44,
        "binop: Mult -> Div",
    ): _TIMES_ONE,
}


def equivalence(module: str, code: str, column: int, description: str) -> str | None:
    """Why this mutant is equivalent, or None when it is not listed."""
    return EQUIVALENT.get((module, code, column, description))
