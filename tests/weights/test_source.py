"""weights.source.parse: every form of `weights=` classified once, errors named early."""
import pytest

from keras_mobile.weights import WeightsError, registry
from keras_mobile.weights.source import parse

ARCH = "mobilenetv3_small_100"


def test_each_form_is_classified_and_tags_resolve(tmp_path):
    hub = parse(ARCH, "imagenet")
    assert hub.kind == "hub" and hub.info == registry.resolve(ARCH, registry.default_tag(ARCH))
    assert hub.num_classes == hub.info.num_classes and repr(hub) == "'imagenet'"
    assert parse(ARCH, hub) is hub                      # parsed once, handed on
    st, h5 = tmp_path / "w.safetensors", tmp_path / "w.weights.h5"
    st.write_bytes(b"x")
    h5.write_bytes(b"x")
    asked = []

    def arch():
        asked.append(1)
        return ARCH
    assert (parse(arch, st).kind, parse(arch, st).path) == ("timm_file", str(st))
    assert (parse(arch, str(h5)).kind, parse(arch, None).kind) == ("keras_file", "none")
    assert parse(arch, st).num_classes is None and not asked    # files need no architecture
    assert parse(arch, "imagenet").info.timm_name == ARCH and asked == [1]
    assert parse(ARCH, None).preprocessing() == parse(ARCH, st).preprocessing() == \
        registry.preprocessing_info(ARCH, "imagenet")


def test_bad_arguments_fail_before_anything_is_built(tmp_path):
    never = lambda: pytest.fail("the architecture was asked for a file argument")  # noqa: E731
    with pytest.raises(ValueError, match="weights file not found"):
        parse(never, tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="unknown weights 'nope'"):
        parse(ARCH, "nope")
    with pytest.raises(ValueError, match="weights must be None"):
        parse(ARCH, 3)
    pth = tmp_path / "w.pth"
    pth.write_bytes(b"x")
    with pytest.raises(WeightsError, match="never unpickled"):
        parse(never, pth)
