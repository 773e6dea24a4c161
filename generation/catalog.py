"""What each tier offers: sizes, aspect ratios, output pixel sizes.

Follows the Gemini image models (shared reference, "Output pixel sizes"):
the 1K row is Google's table, 2K and 4K scale it by 2 and 4, 512 halves it.
"""

FLASH = "flash"
PRO = "pro"
TIERS = (FLASH, PRO)
TIER_LABELS = {FLASH: "Flash", PRO: "Pro"}

SIZES = {FLASH: ("512", "1K", "2K", "4K"), PRO: ("1K", "2K", "4K")}

COMMON_ASPECTS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
ASPECTS = {FLASH: COMMON_ASPECTS + ("1:4", "4:1", "1:8", "8:1"), PRO: COMMON_ASPECTS}

# Pixel size at 1K for each ratio.
ONE_K = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
    # Flash's extreme ratios: same pixel budget as 1:1 at 1K, rounded to 16.
    "1:4": (512, 2048),
    "4:1": (2048, 512),
    "1:8": (352, 2816),
    "8:1": (2816, 352),
}
SCALE = {"512": 0.5, "1K": 1, "2K": 2, "4K": 4}


def pixel_size(size: str, aspect: str) -> tuple[int, int]:
    width, height = ONE_K[aspect]
    scale = SCALE[size]
    return int(width * scale), int(height * scale)


def offers(tier: str, size: str, aspect: str | None = None) -> bool:
    if tier not in SIZES or size not in SIZES[tier]:
        return False
    return aspect is None or aspect in ASPECTS[tier]
