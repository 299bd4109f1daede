"""Encoders and decoders built from the data's shape."""
