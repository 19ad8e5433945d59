"""The internal protocol of Shillings: generated protobuf messages and Int32 framing."""

from shillings_proto import shillings_pb2 as pb

MAX_FRAME = 1024 * 1024
"""Largest frame either end accepts (bytes, excluding the 4-byte length prefix)."""

__all__ = ["MAX_FRAME", "pb"]
