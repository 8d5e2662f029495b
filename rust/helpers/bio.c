// SPDX-License-Identifier: GPL-2.0
/*
 * Inline functions and macros that kernel::block::bio calls: wrappers only,
 * no logic.
 */

#include <linux/bio.h>
#include <linux/blkdev.h>

__rust_helper void rust_helper_bio_set_dev(struct bio *bio, struct block_device *bdev)
{
	bio_set_dev(bio, bdev);
}

__rust_helper struct bio_vec rust_helper_bio_iter_iovec(struct bio *bio, struct bvec_iter iter)
{
	return bio_iter_iovec(bio, iter);
}

__rust_helper void rust_helper_bio_advance_iter_single(const struct bio *bio,
						      struct bvec_iter *iter,
						      unsigned int bytes)
{
	bio_advance_iter_single(bio, iter, bytes);
}

__rust_helper sector_t rust_helper_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

__rust_helper void rust_helper_bio_list_add(struct bio_list *bl, struct bio *bio)
{
	bio_list_add(bl, bio);
}

__rust_helper struct bio *rust_helper_bio_list_pop(struct bio_list *bl)
{
	return bio_list_pop(bl);
}

__rust_helper bool rust_helper_bdev_is_zoned(struct block_device *bdev)
{
	return bdev_is_zoned(bdev);
}

__rust_helper void rust_helper_bio_advance_iter(const struct bio *bio, struct bvec_iter *iter,
						unsigned int bytes)
{
	bio_advance_iter(bio, iter, bytes);
}
