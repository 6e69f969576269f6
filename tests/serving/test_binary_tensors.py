"""The binary tensor codec (``loopline.serving.binary``): every V2 datatype's bytes, BYTES
elements, and splitting a body at its Inference-Header-Content-Length."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest
import tritonclient.utils as tu

from loopline.errors import InvalidInputError, UnsupportedMediaTypeError
from loopline.serving import binary

FIXED = {
    "BOOL": np.array([[True, False], [False, True]]),
    "UINT8": np.array([0, 1, 255], dtype=np.uint8),
    "UINT16": np.array([0, 65535], dtype=np.uint16),
    "UINT32": np.array([0, 2**32 - 1], dtype=np.uint32),
    "UINT64": np.array([0, 2**64 - 1], dtype=np.uint64),
    "INT8": np.array([-128, 127], dtype=np.int8),
    "INT16": np.array([-(2**15), 2**15 - 1], dtype=np.int16),
    "INT32": np.array([-(2**31), 2**31 - 1], dtype=np.int32),
    "INT64": np.array([[-(2**63), 2**63 - 1]], dtype=np.int64),
    "FP16": np.array([0.5, -65504.0, np.inf], dtype=np.float16),
    "FP32": np.array([[1.5, -3.25e38]], dtype=np.float32),
    "FP64": np.array([1e-300, -2.5, np.nan]),
}


@pytest.mark.parametrize("datatype", sorted(FIXED))
def test_every_fixed_size_datatype_round_trips_through_its_little_endian_bytes(
    datatype: str,
) -> None:
    arr = FIXED[datatype]
    data = binary.encode_tensor(arr, datatype)
    assert data == arr.astype(arr.dtype.newbyteorder("<")).tobytes()  # the spec's layout
    back = binary.decode_tensor("x", datatype, list(arr.shape), data)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_the_fixed_size_bytes_are_what_tritonclient_sends() -> None:
    for datatype, arr in FIXED.items():
        assert tu.np_to_triton_dtype(arr.dtype) == datatype
        assert binary.encode_tensor(arr, datatype) == arr.tobytes()


def test_bf16_is_the_upper_half_of_a_float32_and_decodes_to_float32() -> None:
    values = np.array([1.0, -2.5, 3.140625], dtype=np.float32)  # exact in bfloat16
    data = binary.encode_tensor(values, "BF16")
    assert data == (values.view("<u4") >> 16).astype("<u2").tobytes()
    back = binary.decode_tensor("x", "BF16", [3], data)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, values)


def test_bytes_elements_are_length_prefixed_as_tritonclient_serializes_them() -> None:
    values = np.array([["a", "bé"], ["", "名前"]], dtype=object)
    data = binary.encode_tensor(values, "BYTES")
    assert data == tu.serialize_byte_tensor(values).item()
    back = binary.decode_tensor("s", "BYTES", [2, 2], data)
    assert back.dtype == object and back.tolist() == values.tolist()


def test_a_decoded_fixed_size_tensor_views_the_body_without_a_copy() -> None:
    body = bytearray(binary.encode_tensor(np.arange(4.0), "FP64"))
    arr = binary.decode_tensor("x", "FP64", [4], memoryview(body))
    body[0:8] = struct.pack("<d", 42.0)
    assert arr[0] == 42.0


def test_an_unaligned_block_is_copied_into_aligned_memory() -> None:
    body = b"\x00" + binary.encode_tensor(np.arange(3.0), "FP64")
    arr = binary.decode_tensor("x", "FP64", [3], memoryview(body)[1:])
    assert arr.flags.aligned
    np.testing.assert_array_equal(arr, [0.0, 1.0, 2.0])


def test_a_size_that_does_not_match_shape_times_itemsize_names_both() -> None:
    with pytest.raises(
        InvalidInputError, match=r"'x' has 12 bytes .* shape \[2\] of FP64 needs 16"
    ):
        binary.decode_tensor("x", "FP64", [2], b"\x00" * 12)


def test_a_bool_byte_other_than_0_or_1_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="'b' is BOOL but holds a byte other than 0 or 1"):
        binary.decode_tensor("b", "BOOL", [2], b"\x01\x02")


@pytest.mark.parametrize(
    ("data", "count", "message"),
    [
        (struct.pack("<I", 5) + b"abc", 1, "element 0 claims 5 bytes but only 3 are left"),
        (struct.pack("<I", 1) + b"a" + b"\x00\x00", 2, r"too few for 2 BYTES elements"),
        (struct.pack("<I", 1) + b"ab", 1, "1 bytes of binary data after its 1 BYTES elements"),
        (struct.pack("<I", 1) + b"\xff", 1, "element 0 is not UTF-8 text"),
    ],
)
def test_bytes_elements_that_overrun_or_leave_bytes_or_are_not_text_are_refused(
    data: bytes, count: int, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        binary.decode_bytes("s", data, count)


def test_an_empty_bytes_element_is_four_zero_bytes() -> None:
    assert binary.decode_bytes("s", struct.pack("<I", 1) + b"a" + b"\x00" * 4, 2) == ["a", ""]


def test_uint64_values_past_int64_are_refused_for_an_int64_input() -> None:
    binary.check_int64("i", np.array([2**63 - 1], dtype=np.uint64))
    with pytest.raises(InvalidInputError, match="UINT64 value above 9223372036854775807"):
        binary.check_int64("i", np.array([2**63], dtype=np.uint64))


def test_a_body_without_the_header_is_all_json_whatever_its_content_type() -> None:
    for content_type in (None, b"application/json", b"text/plain", b"application/octet-stream"):
        body = binary.split_body(b'{"inputs": []}', None, content_type)
        assert body.document == {"inputs": []} and body.tensors is None and not body.raw


def test_an_octet_stream_body_that_is_not_json_hints_at_the_missing_header() -> None:
    with pytest.raises(InvalidInputError, match="needs the Inference-Header-Content-Length"):
        binary.split_body(b"{}\x00\x01", None, b"application/octet-stream")
    with pytest.raises(InvalidInputError, match=r"not valid JSON: .*\.$"):
        binary.split_body(b"{}\x00\x01", None, b"application/json")


def test_the_header_splits_the_json_part_from_the_binary_part() -> None:
    head = orjson.dumps({"inputs": []})
    body = binary.split_body(head + b"abc", b"%d" % len(head), None)
    assert body.document == {"inputs": []}
    assert body.tensors is not None and body.tensors.remaining == 3
    assert bytes(body.tensors.take("x", 2)) == b"ab"
    with pytest.raises(InvalidInputError, match="1 bytes of binary data after the last"):
        body.tensors.finish()
    with pytest.raises(InvalidInputError, match="binary_data_size 2 but only 1 bytes"):
        body.tensors.take("y", 2)


def test_a_header_equal_to_the_body_length_means_all_json_and_zero_means_raw() -> None:
    assert binary.split_body(b"{}", b"2", b"application/json").tensors is None
    raw = binary.split_body(b"\x00\x01", b"0", None)
    assert raw.raw and raw.document is None and raw.tensors is not None
    assert raw.tensors.remaining == 2


@pytest.mark.parametrize("header", [b"-1", b"abc", b"1.5", b"", b" 0x10"])
def test_a_header_that_is_not_a_non_negative_integer_is_refused(header: bytes) -> None:
    with pytest.raises(InvalidInputError, match="must be the length in bytes of the body's JSON"):
        binary.split_body(b"{}", header, None)


def test_a_header_past_the_end_of_the_body_is_refused_with_both_lengths() -> None:
    with pytest.raises(InvalidInputError, match=r"\(9\) is larger than the request body \(2"):
        binary.split_body(b"{}", b"9", None)


def test_a_json_part_that_is_not_json_names_its_length() -> None:
    with pytest.raises(InvalidInputError, match="its first 2 bytes.* is not valid JSON"):
        binary.split_body(b"{x123", b"2", None)


@pytest.mark.parametrize("content_type", [b"application/json", b"text/plain; charset=utf-8"])
def test_binary_data_under_another_content_type_is_an_unsupported_media_type(
    content_type: bytes,
) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="send it as application/octet-stream"):
        binary.split_body(b"{}abc", b"2", content_type)
    assert binary.split_body(b"{}abc", b"2", b"Application/Octet-Stream; x=1").tensors


def test_counting_bytes_elements_reads_to_the_end_and_refuses_an_overrun() -> None:
    data = binary.encode_bytes(["a", "", "cd"])
    assert binary.count_bytes_elements("s", data) == 3
    with pytest.raises(InvalidInputError, match="element 1 claims 9 bytes, past the end"):
        binary.count_bytes_elements("s", data[:5] + struct.pack("<I", 9))
    with pytest.raises(InvalidInputError, match="fewer than 4 bytes are left"):
        binary.count_bytes_elements("s", data + b"\x00")
