"""The Walker2d-v5 model with obstacles: gymnasium's `walker2d_v5.xml` plus curb and ceiling boxes, written to a
temporary `xml_file` for `Walker2dEnv` (our tasks place the boxes at each reset)."""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import gymnasium

PARKED_X = -100.0  # where unused obstacles wait, far behind the start
MAX_CURBS = 5
MAX_CEILINGS = 5


@dataclass(frozen=True)
class ObstacleShape:
    """Sizes shared by every obstacle of one env (metres)."""

    curb_height: float = 0.25
    curb_width: float = 0.2
    ceiling_bottom: float = 1.1
    ceiling_length: float = 3.0
    ceiling_thickness: float = 0.2


def curb_name(i: int) -> str:
    return f"curb{i}"


def ceiling_name(i: int) -> str:
    return f"ceiling{i}"


def walker_course_xml(shape: ObstacleShape) -> str:
    """The XML text: the stock Walker2d-v5 model with MAX_CURBS curbs and MAX_CEILINGS ceilings parked behind it.

    Obstacles have `contype=conaffinity=1`, so they touch the walker (whose geoms have contype 1) and never the
    floor (static geoms of one body do not collide)."""
    stock = Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets" / "walker2d_v5.xml"
    root = ET.parse(stock).getroot()
    world = root.find("worldbody")
    floor = world.find("geom[@name='floor']")
    floor.set("size", "200 40 40")  # long enough for a 60 m course
    for i in range(MAX_CURBS):
        h = shape.curb_height / 2
        ET.SubElement(
            world,
            "geom",
            name=curb_name(i),
            type="box",
            pos=f"{PARKED_X - 3 * i} 0 {h}",
            size=f"{shape.curb_width / 2} 1 {h}",
            contype="1",
            conaffinity="1",
            rgba="0.9 0.3 0.3 1",
        )
    for i in range(MAX_CEILINGS):
        t = shape.ceiling_thickness / 2
        ET.SubElement(
            world,
            "geom",
            name=ceiling_name(i),
            type="box",
            pos=f"{PARKED_X - 20 - 5 * i} 0 {shape.ceiling_bottom + t}",
            size=f"{shape.ceiling_length / 2} 1 {t}",
            contype="1",
            conaffinity="1",
            rgba="0.3 0.3 0.9 0.6",
        )
    return ET.tostring(root, encoding="unicode")


class TemporaryModelFile:
    """Context manager: the XML text in a temporary file (MuJoCo loads models from paths), removed on exit."""

    def __init__(self, text: str):
        self.text, self.path = text, ""

    def __enter__(self) -> str:
        fd, self.path = tempfile.mkstemp(prefix="walker2d_course_", suffix=".xml")
        with os.fdopen(fd, "w") as f:
            f.write(self.text)
        return self.path

    def __exit__(self, *exc) -> None:
        os.remove(self.path)
