"""Class names of the supported label sets (the names in the project's domain notes)."""

from astroreason.errors import ConfigError

GALAXY10_DECALS = (
    "Disturbed",
    "Merging",
    "Round Smooth",
    "In-between Round Smooth",
    "Cigar Shaped Smooth",
    "Barred Spiral",
    "Unbarred Tight Spiral",
    "Unbarred Loose Spiral",
    "Edge-on without Bulge",
    "Edge-on with Bulge",
)

GALAXY10_SDSS = (
    "Disk, Face-on, No Spiral",
    "Smooth, Completely round",
    "Smooth, in-between round",
    "Smooth, Cigar shaped",
    "Disk, Edge-on, Rounded Bulge",
    "Disk, Edge-on, Boxy Bulge",
    "Disk, Edge-on, No Bulge",
    "Disk, Face-on, Tight Spiral",
    "Disk, Face-on, Medium Spiral",
    "Disk, Face-on, Loose Spiral",
)

# SDSS spectral CLASS values, and the finer families of the synthetic spectra (CLASS + SUBCLASS).
SPECTRUM_CLASSES = ("STAR", "GALAXY", "QSO")
SPECTRUM_SUBCLASSES = ("STAR", "GALAXY STARFORMING", "GALAXY AGN", "QSO BROADLINE")


def spectrum_class_names(task: str) -> tuple[str, ...]:
    """The class names of a spectra task: ``"class"`` (CLASS) or ``"subclass"`` (the families).

    Raises:
        ConfigError: any other task, in one line.
    """
    if task not in ("class", "subclass"):
        raise ConfigError(f"task must be 'class' or 'subclass', got {task!r}")
    return SPECTRUM_CLASSES if task == "class" else SPECTRUM_SUBCLASSES
