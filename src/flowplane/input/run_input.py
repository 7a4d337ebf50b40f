"""``flowplane.input.run_input``: the run input models and ``send_input``/``receive_input`` (see :mod:`flowplane.sdk.input`)."""

from flowplane.sdk.input import (
    AutomaticRunInput,
    BaseRunInput,
    GetAutomaticInputHandler,
    GetInputHandler,
    Keyset,
    RunInput,
    RunInputMetadata,
    asend_input,
    keyset_from_base_key,
    keyset_from_paused_state,
    receive_input,
    run_input_subclass_from_type,
    send_input,
)

__all__ = [
    "AutomaticRunInput",
    "BaseRunInput",
    "GetAutomaticInputHandler",
    "GetInputHandler",
    "Keyset",
    "RunInput",
    "RunInputMetadata",
    "asend_input",
    "keyset_from_base_key",
    "keyset_from_paused_state",
    "receive_input",
    "run_input_subclass_from_type",
    "send_input",
]
