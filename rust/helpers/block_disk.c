// SPDX-License-Identifier: GPL-2.0
/*
 * Inline functions that rust44's block abstractions (kernel::block::disk,
 * kernel::block::backing_file) call: wrappers only, no logic.
 */

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>

__rust_helper unsigned int rust_helper_disk_openers(struct gendisk *disk)
{
	return disk_openers(disk);
}

__rust_helper sector_t rust_helper_get_capacity(struct gendisk *disk)
{
	return get_capacity(disk);
}

__rust_helper struct queue_limits rust_helper_queue_limits_start_update(struct request_queue *q)
{
	return queue_limits_start_update(q);
}

__rust_helper void rust_helper_queue_limits_cancel_update(struct request_queue *q)
{
	queue_limits_cancel_update(q);
}

__rust_helper unsigned int rust_helper_blk_mq_freeze_queue(struct request_queue *q)
{
	return blk_mq_freeze_queue(q);
}

__rust_helper void rust_helper_blk_mq_unfreeze_queue(struct request_queue *q, unsigned int memflags)
{
	blk_mq_unfreeze_queue(q, memflags);
}

__rust_helper loff_t rust_helper_i_size_read(const struct inode *inode)
{
	return i_size_read(inode);
}

__rust_helper void rust_helper_kiocb_start_write(struct kiocb *iocb)
{
	kiocb_start_write(iocb);
}

__rust_helper void rust_helper_kiocb_end_write(struct kiocb *iocb)
{
	kiocb_end_write(iocb);
}

__rust_helper unsigned int rust_helper_memalloc_noio_save(void)
{
	return memalloc_noio_save();
}

__rust_helper void rust_helper_memalloc_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

__rust_helper bool rust_helper_blk_mq_add_to_batch(struct request *req, struct io_comp_batch *iob,
						   bool is_error,
						   void (*complete)(struct io_comp_batch *))
{
	return blk_mq_add_to_batch(req, iob, is_error, complete);
}

__rust_helper gfp_t rust_helper_mapping_gfp_mask(struct address_space *mapping)
{
	return mapping_gfp_mask(mapping);
}

__rust_helper void rust_helper_mapping_set_gfp_mask(struct address_space *mapping, gfp_t mask)
{
	mapping_set_gfp_mask(mapping, mask);
}

__rust_helper unsigned int rust_helper_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

__rust_helper unsigned int rust_helper_bdev_dma_alignment(struct block_device *bdev)
{
	return bdev_dma_alignment(bdev);
}

__rust_helper bool rust_helper_bdev_rot(struct block_device *bdev)
{
	return bdev_rot(bdev);
}

/* The limits word read once, as the block layer's own feature tests do. */
__rust_helper blk_features_t rust_helper_bdev_features(struct block_device *bdev)
{
	return READ_ONCE(bdev_limits(bdev)->features);
}

__rust_helper int rust_helper_blk_validate_block_size(unsigned long bsize)
{
	return blk_validate_block_size(bsize);
}
