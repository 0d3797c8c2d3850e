"""The OpenBao image, as the cluster and the backup job take it (one schema type for both)."""

from typing import TypedDict

from openbao_platform.settings import ImageSettings


class ImageArgs(TypedDict, total=False):
    """The OpenBao container image (the backup job needs its ``bao`` CLI too), pinned."""

    repository: str
    """Image repository, without tag or digest. Default quay.io/openbao/openbao."""
    tag: str
    """A fixed version tag (never `latest`). Default 2.7.2, the version the e2e suite runs."""
    digest: str
    """sha256:<64 hex> to pin the image by digest as well as by tag; omit to pin by tag only."""
    pull_policy: str
    """IfNotPresent (default), Always or Never."""


IMAGE_KEYS = tuple(ImageArgs.__annotations__)


def image_args(image: ImageSettings) -> ImageArgs:
    """The args that select exactly this validated image."""
    args = ImageArgs(repository=image.repository, tag=image.tag, pull_policy=image.pull_policy)
    if image.digest:
        args["digest"] = image.digest
    return args
