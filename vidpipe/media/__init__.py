"""Video files with PyAV: probe and verify (`probe`), join clips (`stitch`); the shared
encoder settings and error handling live in `base`."""

from vidpipe.media.base import MediaInfo
from vidpipe.media.probe import probe, verify
from vidpipe.media.stitch import StitchResult, stitch

__all__ = ["MediaInfo", "StitchResult", "probe", "stitch", "verify"]
