"""Electrode layout of participant T12's four 64-electrode arrays (competitionData readme; data-formats.md §1.4).

Channels are 0-based columns of the (time, 256) feature matrices. Each grid is written as seen in the readme:
superior is up, anterior is left, posterior is right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ELECTRODE_PITCH_UM = 400.0  # standard Utah-array spacing; the readme gives only the grid order

_GRIDS = {
    "44_superior": """
        192 193 208 216 160 165 178 185
        194 195 209 217 162 167 180 184
        196 197 211 218 164 170 177 189
        198 199 210 219 166 174 173 187
        200 201 213 220 168 176 183 186
        202 203 212 221 172 175 182 191
        204 205 214 223 161 169 181 188
        206 207 215 222 163 171 179 190""",
    "6v_superior": """
        062 051 043 035 094 087 079 078
        060 053 041 033 095 086 077 076
        063 054 047 044 093 084 075 074
        058 055 048 040 092 085 073 072
        059 045 046 038 091 082 071 070
        061 049 042 036 090 083 069 068
        056 052 039 034 089 081 067 066
        057 050 037 032 088 080 065 064""",
    "44_inferior": """
        129 144 150 158 224 232 239 255
        128 142 152 145 226 233 242 241
        130 135 148 149 225 234 244 243
        131 138 141 151 227 235 246 245
        134 140 143 153 228 236 248 247
        132 146 147 155 229 237 250 249
        133 137 154 157 230 238 252 251
        136 139 156 159 231 240 254 253""",
    "6v_inferior": """
        125 126 112 103 031 028 011 008
        123 124 110 102 029 026 009 005
        121 122 109 101 027 019 018 004
        119 120 108 100 025 015 012 006
        117 118 107 099 023 013 010 003
        115 116 106 097 021 020 007 002
        113 114 105 098 017 024 014 000
        127 111 104 096 030 022 016 001""",
}

AREAS = {
    "6v": "area 6v (ventral premotor cortex), left hemisphere",
    "44": "area 44 (Broca's area, inferior frontal gyrus), left hemisphere",
}
LDNS_AREA = "6v"  # the LDNS reference (and the release's readme) model the 128 area-6v channels only


def location(area: str) -> str:
    """The electrodes-table `location` of an area: short, so `--channels "location==area 6v"` selects it."""
    return f"area {area}"


@dataclass(frozen=True)
class ArrayLayout:
    """One 8x8 array: its name, brain area and the channel at each (row, column) of the grid."""

    name: str  # e.g. "6v_superior"
    area: str  # "6v" or "44"
    grid: np.ndarray  # (8, 8) channel indices, row 0 = superior edge, column 0 = anterior edge


def arrays() -> list[ArrayLayout]:
    """The four arrays in the order 6v superior, 6v inferior, 44 superior, 44 inferior."""
    order = ("6v_superior", "6v_inferior", "44_superior", "44_inferior")
    return [
        ArrayLayout(name=name, area=name.split("_")[0], grid=np.array(_GRIDS[name].split(), dtype=int).reshape(8, 8))
        for name in order
    ]


def channel_table() -> dict[str, np.ndarray]:
    """Per channel 0..255: array name, area, grid row/column and position in the array (um)."""
    n = 256
    table = {
        "array": np.empty(n, dtype=object), "area": np.empty(n, dtype=object),
        "row": np.full(n, -1), "col": np.full(n, -1),
    }
    for layout in arrays():
        rows, cols = np.indices(layout.grid.shape)
        channels = layout.grid.ravel()
        table["array"][channels] = layout.name
        table["area"][channels] = layout.area
        table["row"][channels] = rows.ravel()
        table["col"][channels] = cols.ravel()
    if (table["row"] < 0).any():  # pragma: no cover - guarded by a test of the grids
        raise AssertionError("channel map does not cover channels 0..255")
    table["rel_x"] = table["col"] * ELECTRODE_PITCH_UM  # anterior -> posterior
    table["rel_y"] = (7 - table["row"]) * ELECTRODE_PITCH_UM  # inferior -> superior
    return table
