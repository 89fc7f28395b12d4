"""Publishes a saved model directory to the Hugging Face Hub: `framework upload --model dir --repo-id user/name`.

The directory goes up as it is (config, metadata, weights or adapter/merged/tokenizer), so
`huggingface_hub.snapshot_download` followed by `Model.load` gets the same model back, and an LLM's
adapter/ loads with peft from the repo's subfolder. Nothing is sent before the directory, the repo id
and the token have been checked.
"""
from __future__ import annotations

import os
from pathlib import Path

from framework.errors import FrameworkError


def _token(token: str | None) -> str:
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise FrameworkError("uploading needs a Hugging Face token with write access: set HF_TOKEN, run "
                             "`hf auth login`, or pass --token")
    return token


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise FrameworkError(f"invalid --repo-id '{repo_id}': {error}") from None
    if "/" not in repo_id:
        raise FrameworkError(f"--repo-id must be <user or organisation>/<name>, got '{repo_id}'")


def upload(model_dir: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None,
           commit_message: str | None = None) -> str:
    """Creates the model repo if needed, uploads the directory to it and returns the commit's URL."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError

    from framework.models.model_dir import SAVED_WEIGHTS, check_model_dir

    directory = Path(model_dir)
    check_model_dir(directory, SAVED_WEIGHTS)
    _check_repo_id(repo_id)
    if constants.HF_HUB_OFFLINE:
        raise FrameworkError("HF_HUB_OFFLINE is set: unset it to upload to the Hugging Face Hub")
    api = HfApi(token=_token(token))
    # the HTTP library's own base error (httpx's, or the fork huggingface_hub uses): connection failures
    network = tuple(base for base in HfHubHTTPError.__bases__ if base is not OSError)
    try:
        api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(directory),
                                   commit_message=commit_message or f"Upload {directory.resolve().name} with framework")
    except HfHubHTTPError as error:  # 401/403 (token), 404, 409 ...: the hub's own message says which
        raise FrameworkError(f"uploading to '{repo_id}' failed: {str(error).splitlines()[0]}") from None
    except (OSError, *network) as error:  # no connection, a timeout
        raise FrameworkError(f"uploading to '{repo_id}' failed: {error}") from None
    return str(getattr(commit, "commit_url", None) or commit)
