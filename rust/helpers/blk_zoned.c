// SPDX-License-Identifier: GPL-2.0
/*
 * Inline functions that kernel::block::zoned calls: wrappers only, no
 * logic.
 */

#include <linux/blkdev.h>

__rust_helper sector_t rust_helper_bdev_zone_sectors(struct block_device *bdev)
{
	return bdev_zone_sectors(bdev);
}

__rust_helper unsigned int rust_helper_bdev_nr_zones(struct block_device *bdev)
{
	return bdev_nr_zones(bdev);
}

__rust_helper unsigned int rust_helper_bdev_max_open_zones(struct block_device *bdev)
{
	return bdev_max_open_zones(bdev);
}

__rust_helper unsigned int rust_helper_bdev_max_active_zones(struct block_device *bdev)
{
	return bdev_max_active_zones(bdev);
}

__rust_helper unsigned int rust_helper_bdev_max_zone_append_sectors(struct block_device *bdev)
{
	return bdev_max_zone_append_sectors(bdev);
}

__rust_helper unsigned int rust_helper_bdev_max_segments(struct block_device *bdev)
{
	return bdev_max_segments(bdev);
}
