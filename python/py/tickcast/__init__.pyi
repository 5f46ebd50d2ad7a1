from typing import Any, Dict, Iterator, Optional, Union
import os
import numpy as np

RECORD_SIZE: int
KINDS: Dict[int, str]
DTYPE: np.dtype

class Subscriber:
    def __init__(
        self,
        group: Optional[str] = ...,
        group_b: Optional[str] = ...,
        interface: str = ...,
        retransmit: Optional[str] = ...,
        tcp: Optional[str] = ...,
        session: Optional[str] = ...,
        timeout: Optional[float] = ...,
        from_seq: int = ...,
        username: str = ...,
        password: str = ...,
    ) -> None: ...
    def __iter__(self) -> Iterator[Dict[str, Any]]: ...
    def __next__(self) -> Dict[str, Any]: ...
    def stats(self) -> Dict[str, Any]: ...

def read(path: Union[str, "os.PathLike[str]"]) -> np.ndarray: ...
def to_pandas(records: np.ndarray) -> Any: ...
