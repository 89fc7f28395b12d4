"""`framework upload`: the saved directory goes to the named repo through HfApi (faked here: no network),
and nothing is sent without a token, a valid repo id and a directory that is a saved model."""
import pytest

from framework.cli import main
from framework.errors import FrameworkError, ModelDirError
from framework.upload import upload


class FakeHfApi:
    """Records what framework asks of the hub, and what the folder held when it was asked."""

    calls: list = []

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, repo_type, private, exist_ok):
        FakeHfApi.calls.append(("create_repo", {"repo_id": repo_id, "repo_type": repo_type, "private": private,
                                                "exist_ok": exist_ok, "token": self.token}))

    def upload_folder(self, repo_id, repo_type, folder_path, commit_message):
        from pathlib import Path

        files = sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file())
        FakeHfApi.calls.append(("upload_folder", {"repo_id": repo_id, "repo_type": repo_type,
                                                  "folder_path": folder_path, "files": files}))
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()


@pytest.fixture
def hub(monkeypatch, tmp_path):
    import huggingface_hub
    from huggingface_hub import constants

    FakeHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the test session runs offline
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))  # never a real saved login
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    return FakeHfApi


def test_upload_creates_the_repo_and_sends_the_saved_model_folder(hub, ecd_model_dir, capsys):
    assert main(["upload", "--model", str(ecd_model_dir), "--repo-id", "someone/tabular", "--private"]) == 0
    (create, created), (send, sent) = hub.calls
    assert create == "create_repo" and send == "upload_folder"
    assert created == {"repo_id": "someone/tabular", "repo_type": "model", "private": True, "exist_ok": True,
                       "token": "hf_test_token"}
    assert sent["repo_id"] == "someone/tabular" and sent["repo_type"] == "model"
    assert sent["folder_path"] == str(ecd_model_dir)
    assert sent["files"] == ["config.yaml", "training_set_metadata.json", "weights.safetensors"]
    assert "https://huggingface.co/someone/tabular/commit/abc" in capsys.readouterr().out


def test_an_llm_folder_goes_up_with_its_adapter_and_tokenizer(hub, llm_model_dir):
    upload(llm_model_dir, "someone/capitals", token="hf_explicit")
    (_, created), (_, sent) = hub.calls
    assert created["private"] is False and created["token"] == "hf_explicit"
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors", "config.yaml",
            "tokenizer/tokenizer.json"} <= set(sent["files"])


def test_no_token_is_a_clear_error_before_anything_is_sent(hub, monkeypatch, ecd_model_dir, capsys):
    monkeypatch.delenv("HF_TOKEN")
    assert main(["upload", "--model", str(ecd_model_dir), "--repo-id", "someone/tabular"]) == 2
    err = capsys.readouterr().err
    assert "needs a Hugging Face token" in err and "HF_TOKEN" in err and "Traceback" not in err
    assert hub.calls == []


def test_bad_inputs_are_refused_before_anything_is_sent(hub, ecd_model_dir, tmp_path, monkeypatch):
    with pytest.raises(ModelDirError, match="is not a saved model"):
        upload(tmp_path, "someone/tabular")
    with pytest.raises(FrameworkError, match="invalid --repo-id 'a/b/c'"):
        upload(ecd_model_dir, "a/b/c")
    with pytest.raises(FrameworkError, match="--repo-id must be <user or organisation>/<name>"):
        upload(ecd_model_dir, "tabular")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(FrameworkError, match="HF_HUB_OFFLINE is set"):
        upload(ecd_model_dir, "someone/tabular")
    assert hub.calls == []
