class WeightsError(RuntimeError):
    """A checkpoint could not be fetched, read or matched to the model (message names the file)."""
