import pytest

from agent import errors


def test_codes_are_unique_and_stable():
    table = {cls.__name__: cls.code for cls in errors.all_error_classes()}
    assert table == {
        "AgentError": -32603,
        "InternalError": -32603,
        "InvalidParams": -32602,
        "MethodNotFound": -32601,
        "NoSuchVM": 1,
        "VMExists": 4,
        "WrongState": 6,
        "CreateFailed": 9,
        "MissingParameter": 11,
        "NotImplementedByAgent": 44,
        "TicketFailed": 18,
        "GuestAgentUnresponsive": 19,
        "HypervisorUnavailable": 40,
        "DestroyFailed": 42,
        "HotplugDiskFailed": 45,
        "HotunplugDiskFailed": 46,
        "HotplugNicFailed": 49,
        "HotunplugNicFailed": 50,
        "BalloonFailed": 53,
        "UpdateDeviceFailed": 56,
        "HardwareInfoFailed": 57,
        "SetNumberOfCpusFailed": 60,
        "Unsupported": 75,
        "ResetFailed": 90,
        "Recovering": 99,
        "OperationConflict": 1001,
        "OperationTimeout": 1002,
        "HypervisorError": 1003,
        "NoSuchChannel": 1004,
    }


def test_method_not_found_names_the_method_in_the_message_too():
    wire = errors.MethodNotFound("no such verb", method="VM.frobnicate").to_wire()
    assert wire["message"] == (
        "The method does not exist or is not available: {'method': 'VM.frobnicate'}"
    )
    assert wire["data"] == {"reason": "no such verb", "method": "VM.frobnicate"}


@pytest.mark.parametrize("cls", errors.all_error_classes())
def test_wire_shape(cls):
    err = cls("why", param="p", skipped=None)
    assert err.to_wire() == {
        "code": cls.code,
        "message": cls.message,
        "data": {"reason": "why", "param": "p"},
    }
