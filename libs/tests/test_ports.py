"""``free_port`` never hands out a port twice, nor one claimed for something else, nor one
an outgoing connection may take meanwhile."""

import pytest
from momentum_libs import stores


@pytest.fixture(autouse=True)
def _own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stores, "_SPOKEN_FOR", set())
    # Under pytest-xdist this process has a class of ports; these tests choose their own.
    monkeypatch.delenv(stores.PORT_CLASS_ENV, raising=False)


def test_ports_picked_one_after_another_never_repeat() -> None:
    # The kernel may return a port again as soon as its probe closed: 500 picks from its
    # ~28,000 would repeat one with a probability near 99%.
    picked = [stores.free_port() for _ in range(500)]
    assert len(set(picked)) == len(picked)


def test_a_claimed_port_is_never_handed_out() -> None:
    ports = stores._listen_ports()
    left_free = set([p for p in ports[:50] if stores._bindable(p)][:2])
    assert len(left_free) == 2
    stores.claim_ports(*(set(ports) - left_free))
    assert {stores.free_port() for _ in range(len(left_free))} == left_free


def test_ports_are_below_the_ephemeral_range_bus_ports_too() -> None:
    # Outgoing connections take local ports of the kernel's ephemeral range: one could
    # take a picked port before its server binds it.
    low = int(stores.EPHEMERAL_PORTS.read_text().split()[0])
    picked = [stores.free_port() for _ in range(200)]
    assert max(picked) + stores.CLUSTER_BUS_OFFSET < low
    assert min(picked) >= 1024


def test_ports_of_a_class_are_all_in_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stores.PORT_CLASS_ENV, "5/8")
    picked = [stores.free_port() for _ in range(50)]
    assert {(port // 2) % 8 for port in picked} == {5}


def test_workers_get_different_classes_and_a_bus_port_stays_in_its_node_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    classes = [stores.port_class_of_worker(f"gw{n}") for n in range(stores.PORT_CLASSES)]
    assert len(set(classes)) == stores.PORT_CLASSES
    monkeypatch.setenv(stores.PORT_CLASS_ENV, classes[3])
    port = stores.free_port()
    assert stores._in_my_class(port + stores.CLUSTER_BUS_OFFSET)
