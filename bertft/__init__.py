"""bertft: fine-tune BERT-family encoders and run ablations over how you fine-tune them."""

from bertft.config import Config
from bertft.errors import BertftError, ConfigError, DataError

__version__ = "0.1.0"
__all__ = ["BertftError", "Config", "ConfigError", "DataError", "__version__"]
