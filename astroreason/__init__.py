"""AstroReason: teach a vision-language model to think with images in astronomy."""

__version__ = "0.1.0"
