"""Runtime choices: execution providers from an option or ``$FACELENS_PROVIDERS``, checked
against what onnxruntime offers, and the bounded cache of loaded models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from facelens import FaceLens, settings
from facelens.cli.main import cli
from facelens.errors import ProviderUnavailableError
from facelens.models import registry
from facelens.models.runtime import available_providers, create_session, resolve_providers
from facelens.pipeline.faces import FacePipeline

CPU = "CPUExecutionProvider"
MISSING = "NoSuchExecutionProvider"


def _relu_model() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty (as if unset), and restored after the test even when the CLI sets them."""
    monkeypatch.setenv(settings.PROVIDERS.name, "")
    monkeypatch.setenv(settings.MODEL_CACHE.name, "")


def _another_available() -> str:
    """A provider besides the CPU that this onnxruntime offers (its build decides which)."""
    others = [p for p in available_providers() if p != CPU]
    if not others:
        pytest.skip("this onnxruntime build offers the CPU provider only")
    return others[0]


def test_the_cpu_alone_by_default() -> None:
    assert resolve_providers() == (CPU,)
    session = create_session(_relu_model(), threads=1)
    assert session.get_providers() == [CPU]
    assert session.run(None, {"x": np.array([[-1.0, 2.0]], np.float32)})[0].tolist() == [[0, 2]]


def test_the_variable_and_the_argument_choose_the_providers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = _another_available()
    monkeypatch.setenv(settings.PROVIDERS.name, f"{other},{CPU}")
    assert create_session(_relu_model(), threads=1).get_providers() == [other, CPU]
    assert create_session(_relu_model(), threads=1, providers=[CPU]).get_providers() == [CPU]


def test_an_unavailable_provider_is_refused_with_the_available_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ProviderUnavailableError, match=MISSING) as refused:
        resolve_providers([MISSING, CPU])
    assert refused.value.code == "provider_unavailable"
    assert CPU in str(refused.value)  # says what is available
    with pytest.raises(ProviderUnavailableError):  # at construction, before any model loads
        FacePipeline(providers=[MISSING])
    with pytest.raises(ProviderUnavailableError):
        FaceLens(gallery=tmp_path / "g.db", embedder="sface-2021dec-int8bq", providers=[MISSING])
    monkeypatch.setenv(settings.PROVIDERS.name, MISSING)
    with pytest.raises(ProviderUnavailableError):
        registry.load_detector(threads=1)


def test_the_providers_reach_the_loaded_models() -> None:
    other = _another_available()
    lens = FacePipeline(embedder="sface-2021dec-int8bq", threads=1, providers=[other, CPU])
    assert lens.providers == (other, CPU)
    plain = registry.load_detector(threads=1)
    chosen = registry.load_detector(threads=1, providers=[other, CPU])
    assert lens.detector is chosen and chosen is not plain  # one cached model per provider list
    assert chosen._session.get_providers() == [other, CPU]  # type: ignore[attr-defined]
    assert plain._session.get_providers() == [CPU]  # type: ignore[attr-defined]


def test_the_cli_option_checks_and_sets_the_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    refused = runner.invoke(cli, ["--providers", MISSING, "models"])
    assert refused.exit_code == 2
    assert MISSING in refused.output and CPU in refused.output
    assert settings.providers() is None
    accepted = runner.invoke(cli, ["--providers", f" {CPU} ", "models"])
    assert accepted.exit_code == 0, accepted.output
    assert settings.providers() == (CPU,)


def test_the_model_cache_drops_the_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.MODEL_CACHE.name, "2")
    first = registry.load_detector(threads=1)
    second = registry.load_detector(threads=2)
    assert registry.load_detector(threads=1) is first  # a hit refreshes it
    third = registry.load_detector(threads=3)  # evicts threads=2, the least recently used
    assert len(registry.loaded_models()) == 2
    assert registry.load_detector(threads=1) is first
    assert registry.load_detector(threads=3) is third
    assert registry.load_detector(threads=2) is not second  # built again


def test_a_fusion_in_use_keeps_its_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking for a fusion refreshes its parts, so a model used earlier goes before them."""
    spec = registry.get_spec(registry.DEFAULT_EMBEDDER)
    assert spec.parts
    monkeypatch.setenv(settings.MODEL_CACHE.name, str(len(spec.parts) + 2))
    detector = registry.load_detector(threads=1)
    fusion = registry.load_embedder(threads=1)  # its parts, then itself
    parts = [registry.load_embedder(part, threads=1) for part, _ in spec.parts]
    assert registry.load_detector(threads=1) is detector  # now newer than the parts
    assert registry.load_embedder(threads=1) is fusion  # the parts are refreshed with it
    registry.load_detector(threads=2)  # one model too many: the detector is the oldest
    assert [registry.load_embedder(part, threads=1) for part, _ in spec.parts] == parts
    assert registry.load_embedder(threads=1) is fusion
    assert registry.load_detector(threads=1) is not detector
