// SPDX-License-Identifier: GPL-2.0

#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/shmem_fs.h>

__rust_helper struct page *rust_helper_folio_file_page(struct folio *folio,
							pgoff_t index)
{
	return folio_file_page(folio, index);
}

__rust_helper void rust_helper_folio_put(struct folio *folio)
{
	folio_put(folio);
}

__rust_helper int rust_helper_cond_resched(void)
{
	return cond_resched();
}

__rust_helper struct folio *rust_helper_shmem_read_folio(struct address_space *mapping,
							 pgoff_t index)
{
	return shmem_read_folio(mapping, index);
}

__rust_helper struct folio *rust_helper_read_mapping_folio(struct address_space *mapping,
							   pgoff_t index, struct file *file)
{
	return read_mapping_folio(mapping, index, file);
}
